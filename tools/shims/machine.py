"""`machine` for simulated ESP32 nodes (MicroPython ESP32 port API).

Backed by simboard.board: every object here is a view of the current
simulated node. Only what the ESP32 port documents is offered; names the
port lacks are absent on purpose so device code cannot come to rely on them.
"""
import powerstate
import simboard
import timing
import vclock
# machine's reset causes and the reset the board raises, re-exported
from simboard import PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET  # noqa: F401
from simboard import NodeReset  # noqa: F401

# wake_reason() values
PIN_WAKE = EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4


class Pin:
    IN = simboard.PIN_IN
    OUT = simboard.PIN_OUT
    OPEN_DRAIN = simboard.PIN_OPEN_DRAIN
    PULL_UP = simboard.PULL_UP
    PULL_DOWN = simboard.PULL_DOWN
    IRQ_RISING = simboard.IRQ_RISING
    IRQ_FALLING = simboard.IRQ_FALLING

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        self._st = simboard.board.pin(id)
        self._st.pin_obj = self
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:  # back to the digital mux (machine_pin.c: rtc_gpio_deinit)
            self._st.mode = mode
            self._st.rtc_mux = False
        if pull != -1:
            self._st.pull = pull
        if value is not None:
            self._st.set_level(value)

    def value(self, v=None):
        if v is None:
            return 0 if self._st.rtc_mux else self._st.value()
        self._st.set_level(v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._st.set_level(1)

    def off(self):
        self._st.set_level(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, wake=None):
        """Soft, always (ports/esp32/machine_pin.c: the ISR schedules
        handler(pin); there is no `hard` argument). Held back during flash
        operations; an edge that finds the queue full is lost."""
        self._st.handler = handler
        self._st.trigger = trigger if handler is not None else 0
        return self

    def __repr__(self):
        return "Pin(%d)" % self._id


class I2C:
    """Hardware I2C. Errors as on the ESP32 port: OSError(ENODEV) when an
    address is not acknowledged, OSError(ETIMEDOUT) when the bus hangs."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self._bus = simboard.board.i2c(id, _pin_id(scl), _pin_id(sda))
        self.freq = freq

    def init(self, scl=None, sda=None, freq=400000, timeout=50000):
        self._bus = simboard.board.i2c(self._bus.bus_id, _pin_id(scl), _pin_id(sda))
        self.freq = freq

    def deinit(self):
        pass

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            try:
                self._bus.device(addr)
                found.append(addr)
            except OSError:
                pass
        return found

    # Each transaction takes its time on the bus (tools/shims/timing.py),
    # with no Python callback meanwhile (machine_hw_i2c_transfer has no
    # pending check). The device answers at its start (a FIFO read pops the
    # first sample within microseconds: samples made meanwhile find room).
    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        try:
            self._bus.device(addr).read_into(memaddr, buf)
        finally:
            _bus_time(3 + len(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        try:
            self._bus.device(addr).write(memaddr, buf)
        finally:
            _bus_time(2 + len(buf))

    def readfrom_into(self, addr, buf, stop=True):
        try:
            self._bus.device(addr).recv_into(buf)
        finally:
            _bus_time(1 + len(buf))

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf)
        return bytes(buf)

    def writeto(self, addr, buf, stop=True):
        try:
            dev = self._bus.device(addr)
            if len(buf):
                dev.send(buf)
        finally:
            _bus_time(1 + len(buf))
        return len(buf) + 1  # ACKs: address byte plus each data byte

    def writevto(self, addr, vector, stop=True):
        data = bytearray()
        for b in vector:
            data.extend(b)
        return self.writeto(addr, data, stop)


class SoftI2C(I2C):
    """Bit-banged I2C: same transactions; bus id is the (scl, sda) pair."""

    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        s, d = _pin_id(scl), _pin_id(sda)
        self._bus = simboard.board.i2c(("soft", s, d), s, d)
        self.freq = freq


def _bus_time(nbytes):
    simboard.board.clock.block(timing.i2c_us(nbytes), what="i2c")


def _pin_id(p):
    if p is None or isinstance(p, int):
        return p
    return p._id


_ADC1 = (36, 37, 38, 39, 32, 33, 34, 35)  # channels 0-7 (ports/esp32/machine_adc.c madc_obj)
_ADC2 = (4, 0, 2, 15, 13, 12, 14, 27, 25, 26)
_ADC_TOP_MV = (950, 1250, 1750, 2450)  # the measurable range's top per attenuation (ESP-IDF)


class ADC:
    """machine.ADC as the ESP32 port has it (ports/esp32/machine_adc.c,
    adc.c): ADC1 on GPIO32-39, ADC2 on 0, 2, 4, 12-15, 25-27, ValueError
    "invalid pin" elsewhere; 11 dB unless set (ADC_ATTEN_MAX); read_uv() is
    the calibrated pin voltage in whole mV x 1000 (adc_cali_raw_to_voltage
    gives mV). What the pin sees: the board's battery divider
    (simboard.board.battery, tools/shims/simbattery.py) on its pin, 0 V on
    any other; above the attenuation's measurable range the reading stays
    at its top. ADC2 while Wi-Fi is on reads 0: adc_oneshot_read fails with
    ESP_ERR_TIMEOUT and the port ignores its result (adc.c
    madcblock_read_helper). As on the port, ADC(pin) hands out the pin's
    one object (a static in ROM there, the board's here: simboard.Board.adcs,
    made by the harness before the boot for the battery pin), so the node's
    heap does not hold it; reading allocates nothing (the battery's voltage
    is worked out once per instant of the virtual clock)."""
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12

    def __new__(cls, pin, *args, **kw):
        n = _pin_id(pin)
        if n not in _ADC1 and n not in _ADC2:
            raise ValueError("invalid pin")
        adcs = simboard.board.adcs
        o = adcs.get(n)
        if o is None:
            o = adcs[n] = object.__new__(cls)
        return o

    def __init__(self, pin, *, atten=3):  # ATTN_11DB (ADC_ATTEN_MAX)
        self._id = _pin_id(pin)
        self.atten(atten)

    def atten(self, a):
        if not 0 <= a <= 3:
            raise ValueError("invalid attenuation")
        self._top = _ADC_TOP_MV[a]

    def read_uv(self):
        b = simboard.board
        if self._id in _ADC2:
            for w in b.wlans:
                if w.active:  # the radio state behind each WLAN object
                    return 0
        bat = b.battery
        mv = bat.pin_mv(self._id) if bat is not None else 0
        return (mv if mv < self._top else self._top) * 1000

    def read_u16(self):
        return self.read_uv() // 1000 * 65535 // 3300  # approximate: a 3.3 V full scale

    def read(self):
        return self.read_u16() >> 4


class WDT:
    """Watchdog: resets the node (NodeReset WDT_RESET) unless fed in time.
    Cannot be stopped once started, as on the ESP32."""

    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        b = simboard.board
        if b.wdt is not None:
            b.clock.cancel(b.wdt[0])
        self._timeout_us = timeout * 1000
        b.wdt = [b.clock.call_later_us(self._timeout_us, _wdt_expired), self._timeout_us]

    def feed(self):
        b = simboard.board
        if b.wdt is not None:
            b.clock.cancel(b.wdt[0])
            b.wdt[0] = b.clock.call_later_us(b.wdt[1], _wdt_expired)


def _wdt_expired():
    simboard.node_reset(WDT_RESET, "watchdog not fed")


class Timer:
    """machine.Timer as the ESP32 port has it (ports/esp32/machine_timer.c):
    hardware timers 0-3 whose ISR only schedules the callback (soft, always;
    hard=True raises after stopping the timer); the callback runs when the
    scheduler next gets to it (vclock), late after a blocking call, and a
    tick that finds the scheduler's queue full is lost. An ISR that is not
    IRAM-safe: held back during flash erases and programs, missed periodic
    ticks are not caught up. `latency_max_us`: the longest wait from a
    tick's due time to its callback (the simulator reports it)."""
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        if not 0 <= id < 4:
            raise ValueError("invalid Timer number")
        self._id = id
        self._ev = None
        self._cb = None
        self._isr = self._tick  # bound once: the ISR allocates nothing
        self._run = self._call
        self._dues = [0] * 8  # due times of this timer's queued ticks, oldest first
        self._dh = 0
        self._dn = 0
        self._paused = False  # its event waits out a light sleep
        self.latency_max_us = 0
        self.ticks = 0
        self.lost = 0
        if kw:
            self.init(**kw)

    def init(self, *, mode=PERIODIC, period=0xFFFFFFFF, freq=None, callback=None, hard=False):
        self.deinit()
        if hard:
            raise ValueError("hard Timers are not implemented")
        if freq is not None:
            period_us = int(1000000 / freq)
        else:
            period_us = period * 1000
        if period_us <= 0:
            raise ValueError("period")
        self._cb = callback
        b = simboard.board
        self._ev = b.clock.call_later_us(period_us, self._isr,
                                         period_us if mode == Timer.PERIODIC else 0, isr=True)
        b.timers.append(self)

    def _tick(self):  # the ISR
        clk = simboard.board.clock
        self.ticks += 1
        if not clk.schedule(self._run, self):
            self.lost += 1
            return
        if self._dn < 8:
            self._dues[(self._dh + self._dn) % 8] = clk._firing_due()
            self._dn += 1

    def _call(self, _t):  # the scheduled callback
        due = simboard.board.clock.now_us
        if self._dn:
            due = self._dues[self._dh]
            self._dh = (self._dh + 1) % 8
            self._dn -= 1
        lat = simboard.board.clock.now_us - due
        if lat > self.latency_max_us:
            self.latency_max_us = lat
        b = simboard.board
        if lat > b.timer_latency_max_us.get(self._id, 0):
            b.timer_latency_max_us[self._id] = lat
        if self._cb is not None:
            self._cb(self)
        # a callback of None is scheduled too; the port then raises a
        # TypeError in the scheduler, printed and swallowed

    def value(self):
        if self._ev is None:
            return 0
        return (self._ev[0] - simboard.board.clock.now_us) // 1000

    def deinit(self):
        if self._ev is not None:
            simboard.board.clock.cancel(self._ev)
            self._ev = None
            if self in simboard.board.timers:
                simboard.board.timers.remove(self)


class RTC:
    """datetime() as the ESP32 port: (year, month, day, weekday, hours,
    minutes, seconds, subseconds); weekday 0 = Monday."""

    def datetime(self, dt=None):
        b = simboard.board
        if dt is None:
            s = b.rtc_seconds()
            y, mo, d = _civil(s // 86400)
            r = s % 86400
            wd = (s // 86400 + 5) % 7  # 2000-01-01 was a Saturday
            return (y, mo, d, wd, r // 3600, (r // 60) % 60, r % 60, 0)
        y, mo, d = dt[0], dt[1], dt[2]
        b.set_rtc_seconds(_days(y, mo, d) * 86400 + dt[4] * 3600 + dt[5] * 60 + dt[6])

    def init(self, dt):
        self.datetime(dt)

    def memory(self, data=None):
        if data is None:
            return simboard.board.rtc_mem
        if len(data) > 2048:
            raise ValueError("buffer too long")
        simboard.board.rtc_mem = bytes(data)


def _days(y, m, d):
    """Days from 2000-01-01 to y-m-d (proleptic Gregorian)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


def _civil(days):
    z = days + 730425
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def reset():
    # esp_restart(): the next boot's reset_cause() is HARD_RESET
    # (ports/esp32/modmachine.c: ESP_RST_SW -> HARD_RESET)
    simboard.node_reset(HARD_RESET, "machine.reset()")


def soft_reset():
    raise SystemExit


def reset_cause():
    return simboard.board.reset_cause


def wake_reason():
    return TIMER_WAKE if simboard.board.reset_cause == DEEPSLEEP_RESET else 0


def unique_id():
    return simboard.board.uid


def freq(hz=None):
    if hz is None:
        return simboard.board.freq
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    simboard.board.freq = hz
    vclock.clock.set_cpu_mhz(hz // 1000000)
    simboard.board.power.cpu_awake(hz // 1000000)


def idle():
    vclock.clock.sleep_us(1000)


def lightsleep(ms=None):
    """esp_light_sleep_start() as ports/esp32/modmachine.c's
    machine_sleep_helper sets it up: wake on the RTC timer after `ms` and on
    the esp32.wake_on_ext0 pin's level (sooner if it already has it).
    Meanwhile no Python callback runs, and the timer groups are clock-gated
    (ESP-IDF "Sleep Modes": peripherals are clock-gated in light sleep): the
    machine.Timer counters and the watchdog (the task WDT runs on timer
    group 0) stop, so their events come later by the time slept. The
    station's Wi-Fi connection is not kept (ESP-IDF: connections are not
    maintained in light sleep): it is dropped. Time advances to the wake.
    The ext0 pin is left on the RTC mux: as a digital input it reads 0
    until a mode-setting Pin.init() (ESP-IDF "Sleep Modes", configuring
    IOs: rtc_gpio_deinit() before using the pad as a GPIO again; 1.27's
    machine_pin.c does that in init(mode=...))."""
    b = simboard.board
    clk = vclock.clock
    if ms is None and b.ext0 is None:
        raise ValueError("no wake source: the node would never wake")
    for w in b.wlans:
        w._dropped()
    for t in b.timers:  # (no list made: a node sleeps ~12 times a second)
        t._paused = t._ev is not None and t._ev in clk._events  # (a fired one-shot is not)
        if t._paused:
            clk.cancel(t._ev)
    if b.wdt is not None:
        clk.cancel(b.wdt[0])
    t0 = clk.now_us
    end = t0 + ms * 1000 if ms is not None else None
    b.power.cpu_sleep(powerstate.LIGHT)
    try:
        while not _ext0_level(b):
            nxt = end
            evs = clk._events
            if evs and (nxt is None or evs[0][0] < nxt):
                nxt = evs[0][0]
            if nxt is None:
                raise ValueError("nothing left to wake the node")
            clk.advance_to(max(nxt, clk.now_us))
            if end is not None and clk.now_us >= end:
                break
    finally:
        slept = clk.now_us - t0
        for t in b.timers:
            if t._paused:
                clk.rearm(t._ev, t._ev[0] + slept)
        if b.wdt is not None:
            clk.rearm(b.wdt[0], b.wdt[0][0] + slept)
        b.wakes += 1
        if b.ext0 is not None:  # esp_sleep_start muxed the pad to RTC IO; nothing muxes it
            b.pin(b.ext0[0]).rtc_mux = True  # back (ESP-IDF: rtc_gpio_deinit before digital use)
        b.power.cpu_awake(b.freq // 1000000)
    clk.run_all()


def _ext0_level(b):
    return b.ext0 is not None and b.pin(b.ext0[0]).value() == b.ext0[1]


def deepsleep(ms=None):
    """With ms: the RTC timer wakes the chip then, through a reset. Without:
    no wake source is armed (the firmware arms none), so the chip sleeps
    until a reset or power cycle from outside (simboard.Board.sleep). An
    armed esp32.wake_on_ext0 pin would end the chip's deep sleep as well
    (ports/esp32/modesp32.c sets ext0_wake_types to SLEEP | DEEPSLEEP): not
    simulated, so it is refused rather than ignored."""
    if simboard.board.ext0 is not None:
        raise NotImplementedError("shim: deepsleep with an ext0 wake armed is not simulated")
    simboard.board.power.cpu_sleep(powerstate.DEEP)  # until the reset boots it
    if ms is None:
        simboard.board.sleep()  # the world goes on; the node wakes only by a reset
    vclock.clock.advance_to(vclock.clock.now_us + ms * 1000)
    simboard.node_reset(DEEPSLEEP_RESET, "deepsleep")


def disable_irq():
    return 1


def enable_irq(state=1):
    pass
