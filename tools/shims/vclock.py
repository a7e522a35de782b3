"""Virtual clock and the ESP32 port's scheduler: the only source of time for
simulated nodes, and the rules by which the chip runs Python callbacks.

Time only moves in a blocking call - a sleep, or a C call the shims model
(an I2C transaction, a flash erase, a socket wait, a TLS handshake step) -
or when a host harness advances it. Events on the clock are hardware:
call_at(..., isr=False) is the world (the sensor filling its FIFO, the
WiFi driver, the watchdog, a fault schedule); isr=True is an interrupt
service routine that is not IRAM-safe (Timer, Pin), which ESP-IDF holds
back while a flash erase or program runs, and which fires once when it
ends: periodic ticks missed meanwhile are lost, not caught up.

Python callbacks (machine.Timer, Pin.irq) never run from an ISR: the ISR
calls schedule(fn, arg), as the port's ISRs call mp_sched_schedule. Then
(py/scheduler.c, py/vm.c, ports/esp32/mphalport.c; docs/shims.md):
- the queue holds SCHED_DEPTH (8) entries; when it is full the entry is
  dropped silently (counted here in `sched_dropped`);
- a callback never runs inside another (the scheduler is locked while one
  runs); its exception is printed and swallowed, the timer goes on;
- pending callbacks run, one per check, at: each pass of a sleep longer
  than ~155 us (the sleep wakes on each ISR and at least every 10 ms
  tick); each 100 ms slice of a blocking socket call (block(us, poll_us));
  and when a blocking call returns to Python (run_all: Python code takes no
  virtual time, and the VM checks at every branch). They do NOT run inside
  a C call without a poll (block(us) without poll_us: DNS, one TLS crypto
  step, an I2C transaction, a flash operation, gc.collect) nor during a
  sleep_us of 155 us or less (a busy wait).
Guarantees: ticks_ms()/ticks_us() wrap at 2**30 like the ESP32 port and
reading them allocates nothing; scheduling and running callbacks allocate
nothing (a fixed ring of SCHED_DEPTH slots).
Non-guarantees: Python code takes no virtual time, so callbacks due while
Python runs are served at once; a harness that busy-waits on ticks never
sees time move. `pace` (wall seconds per virtual second) makes a run real
time. hold(until_us): until then, the virtual time since the call never
runs ahead of the wall time since it (sleeps make up the difference in
wall time): simnet holds the clock while a real peer - the broker, the
gateway - owes the node an answer, so the clock cannot outrun it.
"""

TICKS_PERIOD = 1 << 30
_MASK = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1
SCHED_DEPTH = 8  # ports/esp32/mpconfigport.h MICROPY_SCHEDULER_DEPTH
TICK_US = 10000  # FreeRTOS tick (CONFIG_FREERTOS_HZ 100): a sleep's polling period
BUSY_SLEEP_US = 155  # mp_hal_delay_us runs no callbacks at or below this
LONG_US = 20000  # blocking calls this long are listed in long_calls


class Clock:
    def __init__(self, start_us=0):
        self.now_us = start_us  # unbounded; host side only
        self.tus = start_us & _MASK
        self.tms = (start_us // 1000) & _MASK
        self._events = []  # sorted [due_us, seq, callback, period_us, isr, fired_due_us]
        self._seq = 0
        self.idle_hook = None  # idle_hook(us) once per sleep (emulator: pacing, Ctrl-C)
        self.pace = 0  # wall seconds per virtual second; 0 = as fast as possible
        self.hold_until_us = 0  # hold(): virtual time keeps to wall time until then
        self._hold_v0 = 0  # ... since this virtual time
        self._hold_w0 = 0  # ... and this wall time (real_ticks_us)
        self.held_wall_us = 0  # wall time slept for holds, for reports
        # the scheduler: a fixed ring, allocation-free
        self._sfn = [None] * SCHED_DEPTH
        self._sarg = [None] * SCHED_DEPTH
        self._shead = 0
        self._slen = 0
        self._locked = 0
        self.sched_dropped = 0
        self.sched_max = 0
        self.callback_errors = 0
        # flash operations in progress: ISRs are held back meanwhile
        self._flash = 0
        self._held = []
        self.blocked_us = 0  # virtual time spent in blocking C calls, for reports
        # calls that ran no callbacks for LONG_US or more: {kind: [count, longest us, when]}
        self.long_calls = {}
        self._firing = None
        # the CPU cycle counter (ticks_cpu): cycles at cyc_t0, and the clock rate since
        self.cpu_mhz = 160  # ESP32_GENERIC runs at the IDF default of 160 MHz
        self.cyc_t0 = start_us
        self.cyc0 = 0

    def set_cpu_mhz(self, mhz):
        """machine.freq(): the cycle counter runs at the new rate from now."""
        self.cyc0 += (self.now_us - self.cyc_t0) * self.cpu_mhz
        self.cyc_t0 = self.now_us
        self.cpu_mhz = mhz

    def _set(self, t_us):
        self.now_us = t_us
        self.tus = t_us & _MASK
        self.tms = (t_us // 1000) & _MASK

    # -- events (hardware) --------------------------------------------------
    def call_at(self, due_us, callback, period_us=0, isr=False):
        """Schedule callback() at absolute virtual time due_us; returns a
        handle for cancel() (a periodic event keeps its handle)."""
        self._seq += 1
        ev = [due_us, self._seq, callback, period_us, isr, due_us]
        self._insert(ev)
        return ev

    def _insert(self, ev):
        # ev has the newest seq, so among equal due times it goes last (FIFO);
        # plain int compares keep scheduling allocation-free
        evs = self._events
        i = len(evs)
        due = ev[0]
        while i and evs[i - 1][0] > due:
            i -= 1
        evs.insert(i, ev)

    def call_later_us(self, delay_us, callback, period_us=0, isr=False):
        return self.call_at(self.now_us + delay_us, callback, period_us, isr)

    def rearm(self, handle, due_us):
        """Move an event (pending or already fired) to due_us, reusing its
        handle: simulated chips re-time their interrupt this way without
        allocating, so hot-path allocation proofs can include them."""
        evs = self._events
        if handle in evs:
            evs.remove(handle)
        self._seq += 1
        handle[0] = due_us
        handle[1] = self._seq
        self._insert(handle)

    def cancel(self, handle):
        if handle in self._events:
            self._events.remove(handle)
        if handle in self._held:
            self._held.remove(handle)

    def pending(self):
        return len(self._events)

    def clear(self):
        """Drop every scheduled event and callback (the node is powered off)."""
        self._events = []
        self._held = []
        for i in range(SCHED_DEPTH):
            self._sfn[i] = self._sarg[i] = None
        self._slen = 0
        self._locked = 0
        self._flash = 0

    def clear_python(self):
        """A reset: pending callbacks are gone with RAM (hardware events of
        the world stay; the board cancels its timers)."""
        for i in range(SCHED_DEPTH):
            self._sfn[i] = self._sarg[i] = None
        self._slen = 0
        self._locked = 0
        self._flash = 0
        self._held = []

    def interrupt(self, fn):
        """An interrupt that is not IRAM-safe happens now: fn() runs at once,
        or when the flash operation in progress ends."""
        if self._flash:
            self._held.append(fn)
        else:
            fn()

    def advance_to(self, t_us):
        """Move time forward to t_us, firing due events in order."""
        evs = self._events
        while evs and evs[0][0] <= t_us:
            ev = evs.pop(0)
            if ev[0] > self.now_us:
                self._set(ev[0])
            if ev[4] and self._flash:  # an ISR, held back by the flash operation
                self._held.append(ev)
                continue
            ev[5] = ev[0]  # the due time of this firing (a callback may read it)
            if ev[3]:
                ev[0] += ev[3]
                self._seq += 1
                ev[1] = self._seq
                self._insert(ev)
            self._firing = ev
            try:
                ev[2]()
            finally:
                self._firing = None
        if t_us > self.now_us:
            self._set(t_us)

    def _firing_due(self):
        """The due time of the event firing now (an ISR asks it)."""
        return self._firing[5] if self._firing is not None else self.now_us

    def _release_held(self):
        held = self._held
        self._held = []
        for h in held:
            if isinstance(h, list):  # a held ISR event: fires once now
                h[5] = h[0]
                if h[3]:  # periodic: the next tick on its grid, the missed ones lost
                    while h[0] <= self.now_us:
                        h[0] += h[3]
                    self._seq += 1
                    h[1] = self._seq
                    self._insert(h)
                self._firing = h
                try:
                    h[2]()
                finally:
                    self._firing = None
            else:
                h()

    # -- the scheduler (py/scheduler.c) -----------------------------------
    def schedule(self, fn, arg):
        """mp_sched_schedule: False (and the entry dropped) when full."""
        if self._slen >= SCHED_DEPTH:
            self.sched_dropped += 1
            return False
        i = (self._shead + self._slen) % SCHED_DEPTH
        self._sfn[i] = fn
        self._sarg[i] = arg
        self._slen += 1
        if self._slen > self.sched_max:
            self.sched_max = self._slen
        return True

    def run_one(self):
        """mp_handle_pending: run one pending callback, unless one is
        running already. Its exception is printed and swallowed; a
        BaseException of the harness (a reset, a power cut) goes on."""
        if self._locked or not self._slen:
            return False
        i = self._shead
        fn = self._sfn[i]
        arg = self._sarg[i]
        self._sfn[i] = self._sarg[i] = None
        self._shead = (i + 1) % SCHED_DEPTH
        self._slen -= 1
        self._locked += 1
        try:
            fn(arg)
        except Exception as e:  # noqa: BLE001 - the port's protected call
            self.callback_errors += 1
            _print_exception(e)
        finally:
            self._locked -= 1
        return True

    def run_all(self):
        """Back in Python after a blocking call: the callbacks pending now
        run (the VM checks at each branch, one per check); ones they cause
        wait for the next check, so the program goes on."""
        for _ in range(self._slen):
            if not self.run_one():
                break

    # -- blocking calls -------------------------------------------------------
    def _note(self, us, what):
        """Blocking calls of LONG_US or more, by kind, for reports."""
        if us >= LONG_US:
            k = self.long_calls.get(what)
            if k is None:
                self.long_calls[what] = [1, us, self.now_us]
            else:
                k[0] += 1
                if us > k[1]:
                    k[1] = us
                    k[2] = self.now_us

    def block(self, us, poll_us=0, what="c-call"):
        """A C call that takes `us` of virtual time. Events fire meanwhile
        (ISRs schedule callbacks), but callbacks run only every `poll_us`
        (one per slice: a socket call's 100 ms poll) or, without it, only
        when the call returns."""
        if us > 0:
            self.blocked_us += us
            if not poll_us:
                self._note(us, what)
            end = self.now_us + us
            if poll_us:
                while self.now_us < end:
                    self.advance_to(min(end, self.now_us + poll_us))
                    self.run_one()
            else:
                self.advance_to(end)
        self.run_all()

    def hold(self, until_us):
        """From now until `until_us`, virtual time since now keeps to the
        wall time since now (see the module's docstring)."""
        self._hold_v0 = self.now_us
        self._hold_w0 = real_ticks_us() if real_ticks_us is not None else 0
        if until_us > self.hold_until_us:
            self.hold_until_us = until_us

    def flash_op(self, us, what="flash"):
        """A flash erase or program: the CPU's cache is off, interrupts that
        are not IRAM-safe are held back until it ends (ESP-IDF spi_flash)."""
        self._flash += 1
        try:
            if us > 0:
                self.blocked_us += us
                self._note(us, what)
                self.advance_to(self.now_us + us)
        finally:
            self._flash -= 1
        if not self._flash and self._held:
            self._release_held()
        self.run_all()

    def sleep_us(self, us):
        """time.sleep_ms/sleep_us (mp_hal_delay_ms/us): a pending callback
        runs at each pass - when an ISR wakes the sleep, and at least every
        TICK_US while callbacks wait; a sleep of BUSY_SLEEP_US or less is a
        busy wait that runs none."""
        if self.idle_hook is not None:
            self.idle_hook(us)
        if us <= 0:
            self.run_all()
            return
        if real_sleep_us is not None:
            if self.pace:
                real_sleep_us(int(us * self.pace))
            if self.hold_until_us > self.now_us and real_ticks_us is not None:
                v = min(self.now_us + us, self.hold_until_us) - self._hold_v0
                ahead = v - real_diff_us(real_ticks_us(), self._hold_w0)
                if ahead > 0:
                    self.held_wall_us += ahead
                    real_sleep_us(ahead)
        end = self.now_us + us
        if us <= BUSY_SLEEP_US:
            self.advance_to(end)
            return
        while True:
            self.run_one()
            if self.now_us >= end:
                break
            nxt = end
            if self._slen and not self._locked:
                nxt = min(nxt, self.now_us + TICK_US)
            evs = self._events
            if evs and evs[0][0] < nxt:
                nxt = max(evs[0][0], self.now_us)
            self.advance_to(nxt)
        self.run_all()


def _print_exception(e):
    import sys
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback
        traceback.print_exception(e)


clock = Clock()
real_sleep_us = None  # a wall-clock sleep, installed by the runtime's time shim
real_ticks_us = None  # the wall clock in us, and the difference of two readings
real_diff_us = None  # (installed with it)


def new_clock(start_us=0):
    """Replace the process-wide clock (a new simulated node / test)."""
    global clock
    clock = Clock(start_us)
    return clock


# --- the MicroPython `time` API on the virtual clock -------------------------

def ticks_ms():
    return clock.tms


def ticks_us():
    return clock.tus


def ticks_cpu():
    # Xtensa CCOUNT, masked to the ticks period (ports/esp32/mphalport.h
    # mp_hal_ticks_cpu, extmod/modtime.c): wraps every 6.7 s at 160 MHz
    c = clock
    return (c.cyc0 + (c.now_us - c.cyc_t0) * c.cpu_mhz) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def sleep_ms(ms):
    clock.sleep_us(ms * 1000)


def sleep_us(us):
    clock.sleep_us(us)


def sleep(seconds):
    clock.sleep_us(int(seconds * 1000000))


# Names that device code may use from `time` and that CPython's time lacks.
MP_TIME_NAMES = ("ticks_ms", "ticks_us", "ticks_cpu", "ticks_add", "ticks_diff",
                 "sleep_ms", "sleep_us")
