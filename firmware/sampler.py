"""Sampler: drains the sensor FIFO into per-channel rings, loss-free or
loss-counted, and keeps the optical front end usable.

    sensor.configure(sample_rate=200, ecg_rate=200)
    smp = Sampler(sensor, int_pin=Pin(4, Pin.IN, Pin.PULL_UP))
    while True:
        if smp.due():
            smp.service()
        time.sleep_ms(smp.SLEEP_MS)
    # consumers: smp.rings["ecg"].get(i), smp.times.get(i) (ticks_us)

Guarantees:
- service() allocates nothing in steady state (proven on the MicroPython
  VMs by host_tests/device/test_sampler.py) and never raises for a
  hardware fault: bus errors, a stuck bus (recovered with 9 SCL pulses when
  `bus` gives the pins), a chip that lost its configuration and a wrong
  chip are counted in `errors`/`recoveries`/`reinits` and `fault` names
  the last one.
- every sample is either in the rings or counted: `lost` adds the chip's
  OVF_COUNTER; when that counter saturated or the bus was down, the gap
  measured on the sample clock goes to `lost_estimated`.
- each sample gets a ticks_us timestamp on the chip's sample clock,
  re-anchored to the ESP32 clock (`resyncs`) if the two drift apart by more
  than two sample periods.
- finger-off (IR DC at ambient level, under 1 % of full scale, or under
  5 % with the LED at full drive, over 0.5 s) and ECG lead-off
  (input at the rail for 0.25 s) are flagged with hysteresis; automatic
  LED control keeps each PPG channel's DC between 1/2 and 8/5 of its goal
  (led[0] IR, led[1] red, in 1/256 of full scale: GOAL_MAX, 25 % to 80 %,
  unless set_goals() lowered it; back to GOAL_MAX whenever the finger is
  off; led[2], led[3]: the last DC window's IR and red DC, same unit); a
  red/IR swap self-test (at equal LED currents IR returns more
  light than red through tissue) runs on the first 0.5 s with a finger
  and relabels the channels if the LEDs are wired the other way round.
Non-guarantees: samples read before the swap verdict keep the wiring's
labels (`ppg_ready` turns True after it); consumers must keep up with
the rings (RING_LEN samples) - the sampler does not wait for them.
"""
import time

import maxfifo
from micropython import const
from ring import Ring

RING_LEN = const(1024)
GOAL_MAX = const(128)  # the LED control's DC goal, 1/256 of full scale: the default, 50 %
GOAL_MIN = const(52)  # IR's lowest: its band's low end (1/2) stays over the finger-on level, 10 %
GOAL_MIN_RED = const(13)  # red's lowest, 5 % (finger-on is judged on IR)
_RAIL = const(127000)  # |ECG| at or above this is the rail (18-bit: 131071)
_SWAP_MARGIN_PCT = const(115)
_SWAP_TRIES = const(6)


class Sampler:
    SLEEP_MS = 10

    def __init__(self, sensor, int_pin=None, ring_len=RING_LEN, bus=None):
        cfg = sensor.config
        if cfg is None:
            raise ValueError("configure() the sensor before building the Sampler")
        self.sensor = sensor
        self.cfg = cfg
        self.bus = bus  # (id, scl, sda, freq) to rebuild the I2C after recovery
        num, den = cfg["period"]
        self.period_us = num // den  # whole us; the remainder is carried in _trem
        self._prem_step = num % den
        self._pden = den
        self.rate = den * 1000000 // num if num else 0
        self.rings = {}
        for name in cfg["channels"]:
            self.rings[name] = Ring(ring_len)
        self.times = Ring(ring_len)
        self.full = cfg["full_scale"]
        self.swapped = False
        self.swap_test = "pending" if "ir" in self.rings and "red" in self.rings else "n/a"
        self.ppg_ready = self.swap_test == "n/a"
        self._bind()
        self.lost = 0
        self.lost_estimated = 0
        self._lost_seen = sensor.lost
        self.errors = self.recoveries = self.reinits = self.resyncs = 0
        self.led_changes = 0
        self.led = bytearray((GOAL_MAX, GOAL_MAX, 0, 0))  # goals and DCs (above)
        self.fault = None
        self.finger_off = False
        self.lead_off = False
        self._rail_run = 0
        self._clean_run = 0
        self._win_len = max(8, self.rate // 2)
        self._win_n = 0
        self._win_ir = 0
        self._win_red = 0
        self._swap_tries = 0
        # ticks_us of the next sample: the driver knows when sampling began
        # (a sample period after it comes the first), so samples a full FIFO
        # refused before the first read are counted too; else anchor on it
        t0 = getattr(sensor, "started_us", None)
        self._t = None if t0 is None else time.ticks_add(t0, self.period_us)
        self._trem = 0
        self._after_gap = False
        self._last_read = time.ticks_ms()
        self.pending = False
        self.poll_ms = max(1, cfg["a_full"] * self.period_us // 1000)
        if int_pin is not None:
            from machine import Pin
            int_pin.irq(handler=self._irq, trigger=Pin.IRQ_FALLING)
            self.poll_ms *= 2  # polling is only the fallback for a lost edge
        self._due = time.ticks_add(time.ticks_ms(), self.poll_ms)
        if self.swap_test == "pending":  # equal currents for the self-test
            c = sensor.led_codes[1]
            sensor.set_led_codes(c, c)

    def _bind(self):
        """(ring, decoded array) pairs, honouring a detected LED swap."""
        s = self.sensor
        src = {"ecg": s.ecg, "ir": s.red if self.swapped else s.ir,
               "red": s.ir if self.swapped else s.red}
        self._pairs = [(self.rings[n], src[n]) for n in self.rings]
        self._ecg = src["ecg"] if "ecg" in self.rings else None
        self._ir = src["ir"] if "ir" in self.rings else None
        self._red = src["red"] if "red" in self.rings else None

    def _irq(self, pin):
        self.pending = True

    def due(self):
        return self.pending or time.ticks_diff(time.ticks_ms(), self._due) >= 0

    # -- the hot path -----------------------------------------------------
    def service(self):
        """Drain the FIFO; returns the number of samples stored."""
        self.pending = False
        self._due = time.ticks_add(time.ticks_ms(), self.poll_ms)
        total = 0
        for _ in range(2):  # a second burst if the FIFO was full
            # the samples it returns were in the FIFO when the read began: the
            # read itself takes its time on the bus (~7 ms for 32 x 3 channels)
            t = time.ticks_us()
            try:
                n = self.sensor.read_fifo()
            except maxfifo.SensorError as e:
                self._on_fault(e)
                return total
            self._store(n, t)
            total += n
            if n < maxfifo.FIFO_DEPTH:
                break
        if total:
            self._last_read = time.ticks_ms()
            self.fault = None
        elif time.ticks_diff(time.ticks_ms(), self._last_read) > 1000:
            self._reinit("no samples for 1 s")
        return total

    def _advance(self, k, times=None):
        """Move the sample clock k periods on; with `times` (the timestamp
        ring), stamp k new samples there on the way (locals only: this runs
        for every sample)."""
        t = self._t
        trem = self._trem
        p = self.period_us
        pstep = self._prem_step
        pden = self._pden
        tb = None
        tm = h = 0
        if times is not None:
            tb = times.buf
            tm = times.mask
            h = times.head
            times.head = h + k
        for i in range(k):
            if tb is not None:
                tb[(h + i) & tm] = t
            t += p
            trem += pstep
            if trem >= pden:
                trem -= pden
                t += 1
            t &= 0x3FFFFFFF
        self._t = t
        self._trem = trem

    def _store(self, n, now):
        s = self.sensor
        new_lost = s.lost - self._lost_seen
        self._lost_seen = s.lost
        self.lost += new_lost
        p = self.period_us
        roll = self.cfg["rollover"]
        if self._t is None:
            self._t = time.ticks_add(now, -(n - 1) * p if n else 0)
        gap = new_lost
        if self._after_gap or (new_lost and s.lost_saturated):
            # the overflow counter cannot say how many: measure on the sample clock
            missing = time.ticks_diff(now, self._t) // p + 1 - n - new_lost
            if missing > 0:
                self.lost_estimated += missing
                gap += missing
            self._after_gap = False
        if gap:
            # a sample the full FIFO refused between this read's pointer read
            # and its first pop is in no counter (the pop clears OVF_COUNTER):
            # the next read measures the sample clock too
            self._after_gap = True
        if gap and roll:
            self._advance(gap)  # the chip overwrote the oldest samples
        if n and not gap:
            newest = time.ticks_add(self._t, (n - 1) * p)
            d = time.ticks_diff(now, newest)
            if d < -p or d > 2 * p:
                self._t = time.ticks_add(now, -(n - 1) * p)
                self._trem = 0
                self.resyncs += 1
        self._advance(n, self.times)  # (stamps the n samples)
        for ring, arr in self._pairs:  # the ring slots written directly
            b = ring.buf
            m = ring.mask
            h = ring.head
            for k in range(n):
                b[(h + k) & m] = arr[k]
            ring.head = h + n
        ecg = self._ecg
        if ecg is not None:
            rail = self._rail_run
            clean = self._clean_run
            for k in range(n):
                v = ecg[k]
                if v >= _RAIL or v <= -_RAIL:
                    rail += 1
                    clean = 0
                else:
                    clean += 1
                    rail = 0
            self._rail_run = rail
            self._clean_run = clean
        if gap and not roll:
            self._advance(gap)  # the chip stopped on full: the gap follows these
        if ecg is not None:
            if self._rail_run >= self._win_len // 2:
                self.lead_off = True
            elif self._clean_run >= self._win_len:
                self.lead_off = False
        ir = self._ir
        if ir is not None and n:
            self._window(ir, n)

    def _window(self, ir, n):
        red = self._red
        si = sr = 0
        for k in range(n):
            si += ir[k]
            if red is not None:
                sr += red[k]
        self._win_ir += si
        self._win_red += sr
        self._win_n += n
        if self._win_n < self._win_len:
            return
        dc_ir = self._win_ir // self._win_n
        dc_red = self._win_red // self._win_n if red is not None else 0
        self._win_ir = self._win_red = self._win_n = 0
        full = self.full
        led = self.led
        led[2] = min(255, (dc_ir << 8) // full)  # for firmware/detect's LED floor
        led[3] = min(255, (dc_red << 8) // full)
        ir_code = self.sensor.led_codes[0 if self.swapped else 1]
        if dc_ir < full // 100 or (dc_ir < full // 20 and ir_code >= 255):
            self.finger_off = True  # ambient light only, or no return at full drive
            led[0] = led[1] = GOAL_MAX  # a new placement starts from the default
            return
        if dc_ir >= full // 10:
            self.finger_off = False
        if self.finger_off:
            return
        if self.swap_test == "pending":
            self._swap_verdict(dc_ir, dc_red)
            return
        self._led_control(dc_ir, dc_red)

    def _swap_verdict(self, dc_ir, dc_red):
        if dc_red * 100 > dc_ir * _SWAP_MARGIN_PCT:
            self.swapped = True
            self._bind()
            self.swap_test = "swapped"
        elif dc_ir * 100 > dc_red * _SWAP_MARGIN_PCT:
            self.swap_test = "ok"
        else:
            self._swap_tries += 1
            if self._swap_tries < _SWAP_TRIES:
                return
            self.swap_test = "inconclusive"
        self.ppg_ready = True

    def set_goals(self, ir, red):
        """The DC each PPG channel's LED control aims at, in 1/256 of full
        scale, clipped to GOAL_MIN (red: GOAL_MIN_RED)..GOAL_MAX (firmware/detect.py lowers them
        while the pulse is large enough: docs/power.md "LED current"). The
        LEDs move at the next DC window if the DC is out of the new band.
        Returns True if a goal changed."""
        led = self.led
        old = led[0] + (led[1] << 8)
        led[0] = GOAL_MIN if ir < GOAL_MIN else GOAL_MAX if ir > GOAL_MAX else ir
        led[1] = GOAL_MIN_RED if red < GOAL_MIN_RED else GOAL_MAX if red > GOAL_MAX else red
        return led[0] + (led[1] << 8) != old

    def _led_control(self, dc_ir, dc_red):
        """Proportional step to the goal when the DC is outside 1/2..8/5 of it."""
        s = self.sensor
        codes = s.led_codes  # register order: (red LED register, IR LED register)
        ir_reg = 0 if self.swapped else 1  # register that drives the IR-labelled ring
        c_ir = codes[ir_reg]
        c_red = codes[1 - ir_reg]
        full = self.full
        led = self.led
        n_ir = _retarget(c_ir, dc_ir, full, (full * led[0]) >> 8)
        n_red = _retarget(c_red, dc_red, full, (full * led[1]) >> 8) if self._red is not None else c_red
        if n_ir != c_ir or n_red != c_red:
            if self.swapped:
                s.set_led_codes(n_ir, n_red)
            else:
                s.set_led_codes(n_red, n_ir)
            self.led_changes += 1

    # -- faults -----------------------------------------------------------
    def _on_fault(self, e):
        self.errors += 1
        self.fault = e.__class__.__name__
        self._after_gap = True
        if isinstance(e, maxfifo.SensorBusError) and e.errno == 116 and self.bus is not None:
            bid, scl, sda, freq = self.bus
            from machine import I2C, Pin
            maxfifo.recover_bus(scl, sda)
            self.sensor.rebind(I2C(bid, scl=Pin(scl), sda=Pin(sda), freq=freq))
            self.recoveries += 1

    def _reinit(self, why):
        """The chip stopped producing (reset, brown-out): configure it again."""
        self.fault = why
        self._last_read = time.ticks_ms()
        cfg = self.cfg
        keys = ("sample_rate", "averaging", "adc_range", "pulse_width", "a_full", "rollover")
        kw = {}
        for k in keys:
            kw[k] = cfg[k]
        extra = ("mode",) if "mode" in cfg else ("ecg_rate", "ecg_ia_gain", "ecg_pga_gain",
                                                  "channels", "led_range_ma")
        for k in extra:
            kw[k] = cfg[k]
        step = cfg["led_step_ma"]
        red, ir = self.sensor.led_codes[0], self.sensor.led_codes[1]
        try:
            self.sensor.probe()
            self.sensor.configure(led_red_ma=red * step, led_ir_ma=ir * step, **kw)
        except (maxfifo.SensorError, ValueError) as e:
            self.errors += 1
            self.fault = "reinit failed: %s" % e
            return
        self.reinits += 1
        self._lost_seen = self.sensor.lost
        self._after_gap = True


def _retarget(code, dc, full, goal):
    if dc * 4 >= full // 5 * 19:  # saturated (>= 95 %): halve
        return max(1, code // 2)
    if goal // 2 <= dc <= goal * 8 // 5:
        return code
    new = code * goal // dc if dc else code * 2
    return min(255, max(1, new))
