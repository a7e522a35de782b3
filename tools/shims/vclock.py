"""Virtual clock: the only source of time for simulated nodes.

Guarantees:
- ticks_ms()/ticks_us() wrap at 2**30 like the ESP32 port, and reading them
  allocates nothing (the wrapped values are kept as small ints), so hot-path
  allocation proofs on the 32-bit VM are not polluted by the shim.
- time only moves when someone sleeps (time.sleep_ms, machine.lightsleep, ...)
  or a host harness calls advance(); events scheduled with call_at() fire in
  due order, at their due time, from inside that sleep - like an interrupt
  that arrives while the CPU waits.
Non-guarantees:
- code that busy-waits on ticks without sleeping never sees time move; device
  code must sleep (it must on the chip too, or the idle task starves).
- no real-time pacing unless `pace` is set (wall seconds per virtual second).
"""

TICKS_PERIOD = 1 << 30
_MASK = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1


class Clock:
    def __init__(self, start_us=0):
        self.now_us = start_us  # unbounded; host side only
        self.tus = start_us & _MASK
        self.tms = (start_us // 1000) & _MASK
        self._events = []  # sorted [due_us, seq, callback, period_us]
        self._seq = 0
        self.idle_hook = None  # idle_hook(us) once per sleep (emulator: pacing, Ctrl-C)
        self.pace = 0  # wall seconds per virtual second; 0 = as fast as possible

    def _set(self, t_us):
        self.now_us = t_us
        self.tus = t_us & _MASK
        self.tms = (t_us // 1000) & _MASK

    def call_at(self, due_us, callback, period_us=0):
        """Schedule callback() at absolute virtual time due_us; returns a
        handle for cancel() (a periodic event keeps its handle)."""
        self._seq += 1
        ev = [due_us, self._seq, callback, period_us]
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

    def call_later_us(self, delay_us, callback, period_us=0):
        return self.call_at(self.now_us + delay_us, callback, period_us)

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

    def pending(self):
        return len(self._events)

    def clear(self):
        """Drop every scheduled event (the simulated node is powered off)."""
        self._events = []

    def advance_to(self, t_us):
        """Move time forward to t_us, firing due events in order."""
        evs = self._events
        while evs and evs[0][0] <= t_us:
            ev = evs.pop(0)
            if ev[0] > self.now_us:
                self._set(ev[0])
            if ev[3]:
                ev[0] += ev[3]
                self._seq += 1
                ev[1] = self._seq
                self._insert(ev)
            ev[2]()
        if t_us > self.now_us:
            self._set(t_us)

    def sleep_us(self, us):
        if self.idle_hook is not None:
            self.idle_hook(us)
        if us <= 0:
            self.advance_to(self.now_us)
            return
        if self.pace and real_sleep_us is not None:
            real_sleep_us(int(us * self.pace))
        self.advance_to(self.now_us + us)


clock = Clock()
real_sleep_us = None  # a wall-clock sleep, installed by the runtime's time shim


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
    return clock.tus


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
