"""How long a simulated node spends in each power state, on the virtual clock.

    m = simboard.board.power          # one Meter per Board (the harness's heap)
    m.cpu_awake(160)                  # machine.freq(): the CPU runs at 160 MHz
    m.cpu_sleep(LIGHT)                # machine.lightsleep() ... m.cpu_awake(mhz) after
    m.radio(R_CONNECTED_MIN)          # network shim: the radio's state changed
    m.sensor(chip)                    # simmax: the chip's registers changed
    m.sample()                        # simmax: the node read one sample out of the FIFO
    m.report()                        # {"states_ms": ..., "led": ..., ...}
    m.timeline(600, 1000000, net)     # the harness, before boot: per-second bins
    clock.call_at(t + 1000000, m.tick, 1000000)   # ... closed by a clock event

Only times are measured here; what each state draws is host data
(tools/power/table.py) and Energy = sum of current x time is computed there
(tools/power/model.py), so the node never carries the table.

Three independent rails, each always in exactly one state, so each rail's
times add up to the run:
- cpu: awake at 20/40/80/160/240 MHz, light sleep, deep sleep;
- radio: off (WLAN inactive), on (active, no connection asked), connecting
  (an attempt under way or being retried: scan, association, handshake, DHCP),
  connected with power save none / min modem (PM_PERFORMANCE) / max modem
  (PM_POWERSAVE);
- sensor (from the chip's attachment): the PPG core on or off, the ECG front
  end on or off, and the LED drive - per (pulse width us, pulses per second)
  the integral of the lit LEDs' pulse amplitudes over time (uA x ms) and the
  lit time, as the chip's registers set them; the host multiplies by width
  x rate (the LEDs' average current is amplitude x width x rate).
Bytes sent and received are counted by simnet (tx_bytes, rx_bytes).
The CPU's work, which takes no virtual time (Python code runs between
clock events), is counted as samples read out of the FIFO, per clock
rate at the read (`work_samples`); the host prices it
(tools/power/model.py: per-sample cost x count, taken out of light sleep).

Timeline (the current-over-time panel of `make sim`'s PNG): timeline()
gives the meter a fixed table of bins, allocated then (before the node
boots, so the harness's heap carries it); tick(), a clock event at each
bin's end, accrues every rail up to that instant, so every state time
falls in one bin, and moves to the next bin. Per bin: us in each CPU and
radio state, us with the PPG core on / the ECG front end on / the chip
shut down, the LEDs' charge in uA x s (their average current, amplitude
x width x rate as tools/power/model.led_ma, times the time; rounded to
1 uA x ms at each accrual), the bytes simnet sent and received, and the
samples read out of the FIFO. The host prices each bin as it prices the
run (tools/power/model.timeline). A run longer than the table stops
recording (timeline_full); bins are at most 1000 s, so every value stays
a small int on the 32-bit port (tools/sim sizes them from the run).

Guarantees: the meter's storage is allocated when the board is made, and
the timeline's table when timeline() is called (both the harness's heap,
measured before the node boots), and only ever holds small ints, so the
node's heap figures do not carry it; a state change that changes nothing
allocates nothing (nor does closing a timeline bin); per sample only
sample() runs (two small-int additions; the chip calls sensor() only when
its registers are written).
Non-guarantees: a state change may make short-lived long ints (after 2**30
us of virtual time, or amplitude x time), garbage at the next collection;
more than LED_SLOTS distinct (pulse width, rate) pairs share the last slot,
priced at the highest duty seen in it (`led_merged` counts them); Python
code takes no virtual time, so the CPU's work is counted in samples, not
timed.
"""

# cpu rail
CPU20, CPU40, CPU80, CPU160, CPU240, LIGHT, DEEP = 0, 1, 2, 3, 4, 5, 6
CPU_STATES = ("cpu_20mhz", "cpu_40mhz", "cpu_80mhz", "cpu_160mhz", "cpu_240mhz",
              "light_sleep", "deep_sleep")
_MHZ = (20, 40, 80, 160, 240)
# radio rail
R_OFF, R_ON, R_CONNECTING, R_CONNECTED_NONE, R_CONNECTED_MIN, R_CONNECTED_MAX = 0, 1, 2, 3, 4, 5
RADIO_STATES = ("wifi_off", "wifi_on_idle", "wifi_connecting", "wifi_connected_ps_none",
                "wifi_connected_ps_min_modem", "wifi_connected_ps_max_modem")
LED_SLOTS = 8
# timeline columns (per bin): the CPU and radio states at their rail indices,
# then PPG on, ECG on, chip shut down (us), LED charge (uA x s = mA x ms), bytes
TL_SENSOR = ("ppg_on_us", "ecg_on_us", "sensor_off_us", "led_ua_s", "tx_bytes", "rx_bytes",
             "work_samples")
TL_COLS = 13 + len(TL_SENSOR)
_TL_LED = 16
_TL_TX = 17
_TL_RX = 18
_TL_WORK = 19  # samples read out of the FIFO (the CPU's work, priced by the host)
# accumulator indices: two 24-bit limbs each, so every stored value is a small int
CPU = _CPU = 0
RADIO = _RADIO = 7
PPG = _PPG = 13
ECG = _ECG = 14
OFF = _OFF = 15
LED_AMP = _LED_AMP = 16  # LED_SLOTS of uA x us
_LED_LIT = _LED_AMP + LED_SLOTS  # LED_SLOTS of us
_N = _LED_LIT + LED_SLOTS
_LIMB = 0x1000000
_LOW = 0xFFFFFF
# rails, for their "since" times
_RC, _RR, _RS = 0, 1, 2


def cpu_index(mhz):
    for i in range(5):
        if _MHZ[i] == mhz:
            return i
    raise ValueError("no CPU state for %d MHz" % mhz)


class Meter:
    def __init__(self, clock, mhz=160):
        self.clock = clock
        self._hi = [0] * _N
        self._lo = [0] * _N
        self._sh = [0] * 3  # each rail's last accrual time, two limbs
        self._sl = [0] * 3
        for r in range(3):
            self._dt(r)
        self.t0 = clock.now_us
        self.cpu_state = cpu_index(mhz)
        self.radio_state = R_OFF
        # sensor rail
        self.part = None  # "max86150" | "max30102" once a chip is attached
        self.ppg_on = False
        self.ecg_on = False
        self.led_ir = self.led_red = self.led_pw = self.led_pps = 0  # lit LEDs now (0: dark)
        self.led_slot = -1
        self._slot_pw = [0] * LED_SLOTS
        self._slot_pps = [0] * LED_SLOTS
        self._slots = 0
        self.led_merged = 0
        self._work = [0] * 5  # samples read out of the FIFO, per CPU clock (small ints)
        self.led_ua = 0  # the lit LEDs' average current now (uA)
        # timeline (off until timeline()): the current bin's index, or -1
        self._tb = -1
        self._tl = None
        self._bins = 0
        self.bin_us = 0
        self.tl_t0 = 0
        self.timeline_full = False
        self.net = None
        self._tx0 = 0
        self._rx0 = 0

    # -- storage (small ints only) -------------------------------------------
    def _dt(self, r):
        """us since rail r's last accrual; that time becomes now."""
        now = self.clock.now_us
        nh = now >> 24
        nl = now & _LOW
        dt = ((nh - self._sh[r]) << 24) + (nl - self._sl[r])
        self._sh[r] = nh
        self._sl[r] = nl
        return dt

    def _add(self, i, v):
        lo = self._lo[i] + (v & _LOW)
        hi = self._hi[i] + (v >> 24)
        if lo >= _LIMB:
            lo -= _LIMB
            hi += 1
        self._lo[i] = lo
        self._hi[i] = hi

    def _get(self, i):
        return self._hi[i] * _LIMB + self._lo[i]

    def _bin(self, col, v):
        i = self._tb
        if i >= 0:
            self._tl[col][i] += v

    # -- cpu -----------------------------------------------------------------
    def _cpu_to(self, state):
        dt = self._dt(_RC)
        self._add(_CPU + self.cpu_state, dt)
        self._bin(_CPU + self.cpu_state, dt)
        self.cpu_state = state

    def cpu_awake(self, mhz):
        """machine.freq(hz), a wake from light sleep, a boot."""
        self._cpu_to(cpu_index(mhz))

    def cpu_sleep(self, state):
        """LIGHT or DEEP from now until the next cpu_awake()."""
        self._cpu_to(state)

    def sample(self):
        """One sample read out of the sensor's FIFO (the work it starts -
        sampler, detection - is priced by the host per sample)."""
        c = self.cpu_state
        if c < 5:
            self._work[c] += 1
            self._bin(_TL_WORK, 1)

    # -- radio ---------------------------------------------------------------
    def radio(self, state):
        if state == self.radio_state:
            return
        self._radio_acc()
        self.radio_state = state

    def _radio_acc(self):
        dt = self._dt(_RR)
        self._add(_RADIO + self.radio_state, dt)
        self._bin(_RADIO + self.radio_state, dt)

    # -- sensor --------------------------------------------------------------
    def _sensor_acc(self):
        dt = self._dt(_RS)
        if self.ppg_on:
            self._add(_PPG, dt)
            self._bin(_PPG, dt)
        if self.ecg_on:
            self._add(_ECG, dt)
            self._bin(_ECG, dt)
        if self.part is not None and not (self.ppg_on or self.ecg_on):
            self._add(_OFF, dt)
            self._bin(_OFF, dt)
        s = self.led_slot
        if s >= 0:
            self._add(_LED_AMP + s, (self.led_ir + self.led_red) * dt)
            self._add(_LED_LIT + s, dt)
            ua = self.led_ua  # x dt in uA x s, kept below 2**30 for dt up to 1000 s
            whole = dt // 1000000
            self._bin(_TL_LED, ua * whole + (ua * ((dt - whole * 1000000) // 1000) + 500) // 1000)

    def _slot(self, pw, pps):
        n = self._slots
        for i in range(n):
            if self._slot_pw[i] == pw and self._slot_pps[i] == pps:
                return i
        if n < LED_SLOTS:
            self._slot_pw[n] = pw
            self._slot_pps[n] = pps
            self._slots = n + 1
            return n
        self.led_merged += 1  # the last slot keeps the highest duty it has seen
        last = LED_SLOTS - 1
        if pw * pps > self._slot_pw[last] * self._slot_pps[last]:
            self._slot_pw[last] = pw
            self._slot_pps[last] = pps
        return last

    def sensor(self, chip):
        """The chip's registers were written: its PPG core, ECG front end
        and LED drive from now on, read from the chip's decoded register
        state (m_part, m_ppg, m_ecg, m_ir_ua, m_red_ua, m_pw_us, m_pps:
        plain ints and bools)."""
        ir = chip.m_ir_ua
        red = chip.m_red_ua
        pw = chip.m_pw_us
        pps = chip.m_pps
        if not ((ir or red) and pps):
            ir = red = pw = pps = 0
        if (chip.m_part == self.part and chip.m_ppg == self.ppg_on and chip.m_ecg == self.ecg_on
                and ir == self.led_ir and red == self.led_red and pw == self.led_pw
                and pps == self.led_pps):
            return
        self._sensor_acc()
        self.part = chip.m_part
        self.ppg_on = chip.m_ppg
        self.ecg_on = chip.m_ecg
        if pw != self.led_pw or pps != self.led_pps:
            self.led_slot = self._slot(pw, pps) if pps else -1
        self.led_ir = ir
        self.led_red = red
        self.led_pw = pw
        self.led_pps = pps
        # amplitude x width x rate in uA (the product kept below 2**30)
        self.led_ua = ((ir + red) * pw // 1000 * pps + 500) // 1000

    def led_config(self):
        """(IR uA, red uA, pulse width us, pulses/s) lit now, or None."""
        if not self.led_pps:
            return None
        return (self.led_ir, self.led_red, self.led_pw, self.led_pps)

    # -- timeline ------------------------------------------------------------
    def timeline(self, bins, bin_us, net=None):
        """Record `bins` bins of `bin_us` from now (the harness calls tick()
        at each bin's end). net: simnet's SimNet, whose byte counts are
        binned too (None: no bytes). Allocates the table: before the boot."""
        if bin_us > 1000000000:
            raise ValueError("timeline bins of at most 1000 s")
        from array import array
        # a column per array: no allocation as large as the table (the
        # harness's heap has little room beyond what it holds)
        self._tl = [array("i", [0] * bins) for _ in range(TL_COLS)]
        self._bins = bins
        self.bin_us = bin_us
        self.net = net
        self._tx0 = net.tx_bytes if net is not None else 0
        self._rx0 = net.rx_bytes if net is not None else 0
        self._cpu_to(self.cpu_state)  # earlier time stays out of the bins
        self._radio_acc()
        self._sensor_acc()
        self.tl_t0 = self.clock.now_us
        self._tb = 0
        self.timeline_full = False

    def _close_bin(self):
        """Accrue every rail up to now into the current bin."""
        self.accrue()
        net = self.net
        i = self._tb
        if net is not None and i >= 0:
            tx = net.tx_bytes
            rx = net.rx_bytes
            self._tl[_TL_TX][i] += tx - self._tx0
            self._tl[_TL_RX][i] += rx - self._rx0
            self._tx0 = tx
            self._rx0 = rx

    def tick(self):
        """A bin ends now: its account is closed and the next one opens
        (allocation-free; after the last bin, recording stops)."""
        if self._tb < 0:
            return
        self._close_bin()
        nb = self._tb + 1
        if nb >= self._bins:
            self._tb = -1
            self.timeline_full = True
        else:
            self._tb = nb

    def _timeline_bins(self):
        """Bins recorded: the closed ones, and the one under way if it holds
        any time."""
        n = self._tb if self._tb >= 0 else self._bins
        if self._tb >= 0 and any(self._tl[c][n] for c in range(7)):
            n += 1
        return n

    def timeline_columns(self):
        """[(column name, its array, bins recorded)] of the columns that are
        not all zero (after report(), which closes the bin under way): the
        harness streams them (tools/vm/node.py) rather than copy them."""
        if self._tl is None:
            return []
        n = self._timeline_bins()
        names = CPU_STATES + RADIO_STATES + TL_SENSOR
        out = []
        for c in range(TL_COLS):
            col = self._tl[c]
            for i in range(n):
                if col[i]:
                    out.append((names[c], col, n))
                    break
        return out

    def _timeline_report(self):
        if self._tl is None:
            return None
        return {"t0_ms": self.tl_t0 // 1000, "bin_ms": self.bin_us // 1000,
                "bins": self._timeline_bins(), "full": self.timeline_full}

    def accrue(self):
        """Every rail's time up to now into its accumulators (report() and
        the simulated battery, tools/shims/simbattery.py, read them)."""
        self._cpu_to(self.cpu_state)
        self._radio_acc()
        self._sensor_acc()

    def us(self, i):
        """Accumulator i (CPU + state, RADIO + state, PPG, ECG, OFF, LED_AMP
        + slot in uA x us, LED_LIT + slot): its total up to the last accrual."""
        return self._get(i)

    def work(self, i):
        """Samples read out of the FIFO at CPU state i (< 5, an awake clock)."""
        return self._work[i]

    def slot_config(self, s):
        """(pulse width us, pulses/s) of LED slot s < led_slots()."""
        return self._slot_pw[s], self._slot_pps[s]

    def led_slots(self):
        return self._slots

    # -- report (host side of the harness: allocation allowed) ----------------
    def report(self):
        """State times in ms up to now; LED drive per slot as [pulse width us,
        pulses/s, sum of lit amplitudes x time in uA x ms, lit ms]; with a
        timeline, "timeline": {t0_ms, bin_ms, bins, full} (the last bin may
        be short; its columns: timeline_columns())."""
        self._close_bin()
        states = {}
        for i in range(7):
            states[CPU_STATES[i]] = self._get(_CPU + i) / 1000
        for i in range(6):
            states[RADIO_STATES[i]] = self._get(_RADIO + i) / 1000
        led = []
        for i in range(self._slots):
            led.append([self._slot_pw[i], self._slot_pps[i], self._get(_LED_AMP + i) / 1000,
                        self._get(_LED_LIT + i) / 1000])
        return {"run_ms": (self.clock.now_us - self.t0) / 1000, "states_ms": states,
                "sensor_part": self.part, "ppg_on_ms": self._get(_PPG) / 1000,
                "ecg_on_ms": self._get(_ECG) / 1000, "sensor_off_ms": self._get(_OFF) / 1000,
                "led": led, "led_merged": self.led_merged, "timeline": self._timeline_report(),
                "work_samples": {CPU_STATES[i]: self._work[i] for i in range(5) if self._work[i]}}
