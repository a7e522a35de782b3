"""How long a simulated node spends in each power state, on the virtual clock.

    m = simboard.board.power          # one Meter per Board (the harness's heap)
    m.cpu_awake(160)                  # machine.freq(): the CPU runs at 160 MHz
    m.cpu_sleep(LIGHT)                # machine.lightsleep() ... m.cpu_awake(mhz) after
    m.radio(R_CONNECTED_MIN)          # network shim: the radio's state changed
    m.sensor(chip)                    # simmax: the chip's registers changed
    m.report(now_us)                  # {"states_ms": ..., "led": ..., ...}

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
- sensor: the PPG core on or off, the ECG front end on or off, and the LED
  drive: time per (IR uA, red uA, pulse width us, pulses per second) as the
  chip's registers set it (its average current is amplitude x width x rate).
Bytes sent and received are counted by simnet (tx_bytes, rx_bytes); the host
turns them into airtime.

Guarantees: a state change allocates nothing unless a sensor register write
gives the LED drive a configuration it has not had before (a new dict key);
nothing here runs per sample or per FIFO read (the chip calls sensor() only
when its configuration is rewritten). Non-guarantees: after 2**30 us of
virtual time the sums are long ints on 32-bit MicroPython (an allocation at
a state change, never on a sampling path); Python code takes no virtual
time, so CPU load above the awake state is not measured.
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


def cpu_index(mhz):
    for i in range(5):
        if _MHZ[i] == mhz:
            return i
    raise ValueError("no CPU state for %d MHz" % mhz)


class Meter:
    def __init__(self, clock, mhz=160):
        self.clock = clock
        self.t0 = clock.now_us
        self.cpu_us = [0] * 7
        self.radio_us = [0] * 6
        self.cpu_state = cpu_index(mhz)
        self.cpu_since = clock.now_us
        self.radio_state = R_OFF
        self.radio_since = clock.now_us
        # sensor rail
        self.part = None  # "max86150" | "max30102" once a chip is attached
        self.ppg_us = 0
        self.ecg_us = 0
        self.off_us = 0  # a chip attached, neither its PPG core nor its ECG front end on
        self.ppg_on = False
        self.ecg_on = False
        self.led = {}  # (ir_ua, red_ua, pw_us, pulses_per_s) -> us
        self.led_key = None
        self.sensor_since = clock.now_us

    # -- cpu ---------------------------------------------------------------
    def _cpu_to(self, state):
        now = self.clock.now_us
        self.cpu_us[self.cpu_state] += now - self.cpu_since
        self.cpu_since = now
        self.cpu_state = state

    def cpu_awake(self, mhz):
        """machine.freq(hz), a wake from light sleep, a boot."""
        self._cpu_to(cpu_index(mhz))

    def cpu_sleep(self, state):
        """LIGHT or DEEP from now until the next cpu_awake()."""
        self._cpu_to(state)

    # -- radio -------------------------------------------------------------
    def radio(self, state):
        if state == self.radio_state:
            return
        now = self.clock.now_us
        self.radio_us[self.radio_state] += now - self.radio_since
        self.radio_since = now
        self.radio_state = state

    # -- sensor ------------------------------------------------------------
    def _sensor_acc(self):
        now = self.clock.now_us
        dt = now - self.sensor_since
        self.sensor_since = now
        if self.ppg_on:
            self.ppg_us += dt
        if self.ecg_on:
            self.ecg_us += dt
        if self.part is not None and not (self.ppg_on or self.ecg_on):
            self.off_us += dt
        if self.led_key is not None:
            self.led[self.led_key] = self.led.get(self.led_key, 0) + dt

    def sensor(self, chip):
        """The chip's registers were written: its PPG core, ECG front end
        and LED drive from now on, read from the chip's decoded register
        state (m_part, m_ppg, m_ecg, m_ir_ua, m_red_ua, m_pw_us, m_pps:
        plain ints and bools, so an unchanged configuration costs nothing)."""
        ir = chip.m_ir_ua  # one by one: a 4-tuple unpack would allocate on MicroPython
        red = chip.m_red_ua
        pw = chip.m_pw_us
        pps = chip.m_pps
        lit = (ir or red) and pps
        key = self.led_key
        if lit:
            same = (key is not None and key[0] == ir and key[1] == red and key[2] == pw
                    and key[3] == pps)
        else:
            same = key is None
        if (chip.m_part == self.part and chip.m_ppg == self.ppg_on
                and chip.m_ecg == self.ecg_on and same):
            return
        self._sensor_acc()
        self.part = chip.m_part
        self.ppg_on = chip.m_ppg
        self.ecg_on = chip.m_ecg
        if not same:
            self.led_key = (ir, red, pw, pps) if lit else None

    # -- report (host side of the harness: allocation allowed) --------------
    def report(self, now_us=None):
        """State times in ms, up to now_us (default: now)."""
        if now_us is not None and now_us != self.clock.now_us:
            raise ValueError("report at the clock's time only")
        self._cpu_to(self.cpu_state)
        now = self.clock.now_us
        self.radio_us[self.radio_state] += now - self.radio_since
        self.radio_since = now
        self._sensor_acc()
        run = now - self.t0
        states = {}
        for i in range(7):
            states[CPU_STATES[i]] = self.cpu_us[i] / 1000
        for i in range(6):
            states[RADIO_STATES[i]] = self.radio_us[i] / 1000
        return {"run_ms": run / 1000, "states_ms": states, "sensor_part": self.part,
                "ppg_on_ms": self.ppg_us / 1000, "ecg_on_ms": self.ecg_us / 1000,
                "sensor_off_ms": self.off_us / 1000,
                "led": [[k[0], k[1], k[2], k[3], v / 1000] for k, v in self.led.items()]}
