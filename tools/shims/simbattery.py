"""The simulated node's LiPo cell: it drains by the energy model's current
and its voltage, through the board's divider, is what machine.ADC reads.

    bat = Battery(board.power, capacity_mah=500, pct=16, price=model.prices("max86150"),
                  pin=35, divider=2.0, net=simnet)
    board.battery = bat             # machine.ADC(Pin(35)).read_uv() reads it
    bat.pct(), bat.drawn_mah(), bat.terminal_mv()

Charge drawn = sum of price x time over the power meter's states
(tools/shims/powerstate.py), priced as tools/power/model.energy() prices a
run, the CPU's work per FIFO sample included - the host hands the prices
over (model.prices()), so the node's own
battery readings in `make sim` follow the model. State of charge = the
start's charge minus that, over the capacity. The voltage the divider sees:
open-circuit voltage from the same LiPo curve the node converts with
(lib/battery.py _OCV, copied: the harness must not import the node's own
module, whose heap it would then share; a typical cell, so the simulation
does not test the curve itself), minus R_OHM x the current drawn at that instant (the cell's
internal resistance: a stated assumption of 0.15 ohm, typical of a small
LiPo pouch), divided by the divider; each reading adds +-NOISE_MV of noise
at the pin (deterministic). Below 0 % the cell holds 3.0 V (its protection
circuit would cut off; the node should be asleep long before).

Guarantees: this is harness state (built before the node boots, so its heap
is the harness's); the voltage is worked out once per instant of the
virtual clock, so a burst of ADC reads allocates nothing. Non-guarantees:
no temperature, ageing, hysteresis or relaxation of the cell; the price's
airtime uses simnet's byte counts as the model does.
"""
import powerstate

OCV = (4190, 4050, 3990, 3890, 3800, 3720, 3630, 3530, 3420, 3300, 3100)  # mV at 100 ... 0 %
R_OHM = 0.15
NOISE_MV = 8
EMPTY_MV = 3000


def ocv_mv(pct):
    """Open-circuit voltage at pct % (0-100), piecewise linear on OCV."""
    if pct >= 100:
        return OCV[0]
    if pct <= 0:
        return OCV[10]
    i = int((100 - pct) // 10)  # between OCV[i] (100 - 10 i %) and OCV[i + 1]
    hi = 100 - 10 * i
    return OCV[i] + (OCV[i + 1] - OCV[i]) * (hi - pct) / 10.0


class Battery:
    def __init__(self, meter, capacity_mah, pct, price, pin, divider, net=None):
        self.meter = meter
        self.capacity_mah = capacity_mah
        self.start_pct = pct
        self.price = price
        self.pin = pin
        self.divider = divider
        self.net = net
        self._t = -1
        self._mv = 0
        self._x = 1  # the noise generator's state (a small LCG: small ints only)

    def drawn_mah(self):
        """Charge drawn since the start, priced as model.energy() prices it."""
        m = self.meter
        p = self.price
        m.accrue()
        mams = 0.0  # mA x ms
        for i in range(7):
            mams += p["cpu"][i] * m.us(powerstate.CPU + i) / 1000.0
        # the CPU's work (no virtual time here): out of light sleep, at the
        # clock of the reads - model._work()
        sleep = m.us(powerstate.CPU + 5) / 1000.0
        for i in range(5):
            w = min(m.work(i) * p["work_us"][i] / 1000.0, sleep)
            sleep -= w
            mams += (p["cpu"][i] - p["cpu"][5]) * w
        t_conn = 0.0
        radio = p["radio"]
        conn = [0.0] * 6
        for i in range(6):
            t = m.us(powerstate.RADIO + i) / 1000.0
            if i >= powerstate.R_CONNECTED_NONE:
                t_conn += t
                conn[i] = t
            else:
                mams += radio[i] * t
        net = self.net
        tx = (net.tx_bytes if net is not None else 0) * 8 / (p["phy_mbit_s"] * 1000.0)
        rx = (net.rx_bytes if net is not None else 0) * 8 / (p["phy_mbit_s"] * 1000.0)
        air = tx + rx
        if air > t_conn:
            tx, rx = (tx * t_conn / air, rx * t_conn / air) if air else (0.0, 0.0)
            air = t_conn
        keep = 1.0 - air / t_conn if t_conn else 0.0
        for i in range(powerstate.R_CONNECTED_NONE, 6):
            mams += radio[i] * conn[i] * keep
        mams += p["tx"] * tx + p["rx"] * rx
        if m.part is not None:
            mams += p["ppg"] * m.us(powerstate.PPG) / 1000.0
            mams += p.get("ecg", 0.0) * m.us(powerstate.ECG) / 1000.0
            mams += p["shutdown"] * m.us(powerstate.OFF) / 1000.0
            for s in range(m.led_slots()):
                pw, pps = m.slot_config(s)
                ua_ms = m.us(powerstate.LED_AMP + s) / 1000.0
                mams += ua_ms / 1000.0 * pw * 1e-6 * pps
        return mams / 3600000.0

    def pct(self):
        """State of charge now, 0-100 (float)."""
        left = self.capacity_mah * self.start_pct / 100.0 - self.drawn_mah()
        return max(0.0, 100.0 * left / self.capacity_mah)

    def current_ma(self):
        """What the node draws at this instant (its states now)."""
        m = self.meter
        p = self.price
        ma = p["cpu"][m.cpu_state] + p["radio"][m.radio_state]
        if m.part is not None:
            if m.ppg_on:
                ma += p["ppg"]
            if m.ecg_on:
                ma += p.get("ecg", 0.0)
            if not (m.ppg_on or m.ecg_on):
                ma += p["shutdown"]
            ma += (m.led_ir + m.led_red) / 1000.0 * m.led_pw * 1e-6 * m.led_pps
        return ma

    def terminal_mv(self):
        pct = self.pct()
        if pct <= 0:
            return EMPTY_MV
        return ocv_mv(pct) - self.current_ma() * R_OHM

    def pin_mv(self, pin):
        """The voltage machine.ADC sees on `pin` (mV): the divider's
        output on the battery's pin, 0 elsewhere; plus this reading's noise."""
        if pin != self.pin:
            return 0
        t = self.meter.clock.now_us
        if t != self._t:
            self._t = t
            self._mv = int(self.terminal_mv() / self.divider)
        x = (self._x * 75 + 74) % 65537
        self._x = x
        return self._mv + x % (2 * NOISE_MV + 1) - NOISE_MV

    def report(self):
        return {"start_pct": self.start_pct, "end_pct": round(self.pct(), 2),
                "drawn_mah": round(self.drawn_mah(), 3), "capacity_mah": self.capacity_mah,
                "end_mv": round(self.terminal_mv()), "r_ohm": R_OHM}
