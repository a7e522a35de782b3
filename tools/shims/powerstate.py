"""How long a simulated node spends in each power state, on the virtual clock.

    m = simboard.board.power          # one Meter per Board (the harness's heap)
    m.cpu_awake(160)                  # machine.freq(): the CPU runs at 160 MHz
    m.cpu_sleep(LIGHT)                # machine.lightsleep() ... m.cpu_awake(mhz) after
    m.radio(R_CONNECTED_MIN)          # network shim: the radio's state changed
    m.sensor(chip)                    # simmax: the chip's registers changed
    m.report()                        # {"states_ms": ..., "led": ..., ...}

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

Guarantees: the meter's storage is allocated when the board is made (the
harness's heap, measured before the node boots) and only ever holds small
ints, so the node's heap figures do not carry it; a state change that
changes nothing allocates nothing, and nothing here runs per sample or per
FIFO read (the chip calls sensor() only when its registers are written).
Non-guarantees: a state change may make short-lived long ints (after 2**30
us of virtual time, or amplitude x time), garbage at the next collection;
more than LED_SLOTS distinct (pulse width, rate) pairs share the last slot,
priced at the highest duty seen in it (`led_merged` counts them); Python
code takes no virtual time, so CPU load above "awake" is not measured.
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

    # -- cpu -----------------------------------------------------------------
    def _cpu_to(self, state):
        self._add(_CPU + self.cpu_state, self._dt(_RC))
        self.cpu_state = state

    def cpu_awake(self, mhz):
        """machine.freq(hz), a wake from light sleep, a boot."""
        self._cpu_to(cpu_index(mhz))

    def cpu_sleep(self, state):
        """LIGHT or DEEP from now until the next cpu_awake()."""
        self._cpu_to(state)

    # -- radio ---------------------------------------------------------------
    def radio(self, state):
        if state == self.radio_state:
            return
        self._add(_RADIO + self.radio_state, self._dt(_RR))
        self.radio_state = state

    # -- sensor --------------------------------------------------------------
    def _sensor_acc(self):
        dt = self._dt(_RS)
        if self.ppg_on:
            self._add(_PPG, dt)
        if self.ecg_on:
            self._add(_ECG, dt)
        if self.part is not None and not (self.ppg_on or self.ecg_on):
            self._add(_OFF, dt)
        s = self.led_slot
        if s >= 0:
            self._add(_LED_AMP + s, (self.led_ir + self.led_red) * dt)
            self._add(_LED_LIT + s, dt)

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

    def led_config(self):
        """(IR uA, red uA, pulse width us, pulses/s) lit now, or None."""
        if not self.led_pps:
            return None
        return (self.led_ir, self.led_red, self.led_pw, self.led_pps)

    def accrue(self):
        """Every rail's time up to now into its accumulators (report() and
        the simulated battery, tools/shims/simbattery.py, read them)."""
        self._cpu_to(self.cpu_state)
        self._add(_RADIO + self.radio_state, self._dt(_RR))
        self._sensor_acc()

    def us(self, i):
        """Accumulator i (CPU + state, RADIO + state, PPG, ECG, OFF, LED_AMP
        + slot in uA x us, LED_LIT + slot): its total up to the last accrual."""
        return self._get(i)

    def slot_config(self, s):
        """(pulse width us, pulses/s) of LED slot s < led_slots()."""
        return self._slot_pw[s], self._slot_pps[s]

    def led_slots(self):
        return self._slots

    # -- report (host side of the harness: allocation allowed) ----------------
    def report(self):
        """State times in ms up to now; LED drive per slot as [pulse width us,
        pulses/s, sum of lit amplitudes x time in uA x ms, lit ms]."""
        self.accrue()
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
                "led": led, "led_merged": self.led_merged}
