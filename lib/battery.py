"""Battery monitor: a LiPo cell's voltage through a resistor divider on an
ADC pin, as millivolts and percent, with the battery alerts' hysteresis.

    from machine import ADC, Pin
    adc = ADC(Pin(35))
    adc.atten(ADC.ATTN_11DB)         # 150-2450 mV at the pin
    bat = Battery(adc, 2.0)          # divider: cell voltage / pin voltage
    changed = bat.update()           # every status: alert bits that changed
    bat.mv, bat.pct, bat.active      # active: bit0 battery_low, bit1 battery_critical

update() takes _READS (16) readings of adc.read_uv() (ports/esp32/adc.c: the
calibrated pin voltage in uV), averages them, scales by the divider to the
cell's mV and converts that to percent on a LiPo open-circuit curve, piecewise
linear between its points (_OCV below; docs/power.md "Battery"). Alerts:
battery_low at <= 15 %, battery_critical at <= 5 %, each raised once a
reading has been at or below its own threshold twice running (_CONFIRM: a
load transient alone raises nothing, also after a run of low readings) and
cleared only at or above the threshold + 5 points (_HYST: a noisy reading
does not flap); critical implies low.

Guarantees: update() allocates nothing (small ints only: the ADC is read in
uV, at most 16 x 3.3 V); the adc object is injected (any object with
read_uv()). Non-guarantees: percent assumes a rested cell - under load the
voltage sags and the percent reads low, never high; the curve is a typical
LiPo's, not this cell's; the ADC's own error (ESP-IDF: about +-60 mV at 11 dB
after calibration at the pin) is not corrected.
"""
from micropython import const

_LOW = const(15)  # battery_low at or below this %
_CRIT = const(5)  # battery_critical
_HYST = const(5)  # cleared at threshold + this
_READS = const(16)  # ADC reads averaged per update
_CONFIRM = const(2)  # readings in a row before an alert is raised
# LiPo open-circuit voltage in mV at 100, 90, ... 0 %: the default Li-ion/LiPo
# OCV_ARRAY of meshtastic/firmware src/power.h (docs/power.md "Battery")
_OCV = (4190, 4050, 3990, 3890, 3800, 3720, 3630, 3530, 3420, 3300, 3100)


class Battery:
    def __init__(self, adc, divider):
        self.adc = adc
        self.div = int(divider * 10000 + 0.5)  # x 10000: integer maths from here on
        # mV, % (rounded down), alert bits (bit0 battery_low, bit1 battery_critical),
        # readings in a row at or below the low (n) and the critical (m) threshold
        self.mv = self.pct = self.active = self.n = self.m = 0

    def update(self):
        """Read the cell; returns the alert bits that changed (0: none)."""
        s = 0
        for _ in range(_READS):
            s += self.adc.read_uv()
        # pin mV (at most 3300: the pin's supply) x divider x 10000: a small int on the
        # 32-bit port for every divider the config accepts (<= 3.3e8 < 2**30)
        mv = (s + _READS * 500) // (_READS * 1000) * self.div // 10000
        self.mv = mv
        p = 100
        if mv < _OCV[0]:  # piecewise linear between the curve's points
            p = 0
            for i in range(1, 11):
                lo = _OCV[i]
                if mv > lo:
                    p = 100 - 10 * i + 10 * (mv - lo) // (_OCV[i - 1] - lo)
                    break
        self.pct = p
        a = self.active
        now = (a + 1) >> 1  # 0 ok, 1 low, 2 critical
        worse = 2 if p <= _CRIT else 1 if p <= _LOW else 0
        # readings in a row at or below each threshold: each level is confirmed
        # on its own, so one dip below 5 % after a run at 12 % raises nothing
        self.n = self.n + 1 if worse >= 1 else 0
        self.m = self.m + 1 if worse == 2 else 0
        new = now
        if worse > now:
            if self.m >= _CONFIRM:
                new = 2
            elif self.n >= _CONFIRM:
                new = 1
        elif p >= _LOW + _HYST:
            new = 0
        elif p >= _CRIT + _HYST and now == 2:
            new = 1
        if new == now:
            return 0
        self.active = (1 << new) - 1
        return a ^ self.active
