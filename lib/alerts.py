"""Clinical alerts with hysteresis and minimum duration.

    from alerts import Alerts, HR_LOW
    al = Alerts({"hr_low": 40, "spo2_low": 90})   # any subset of alertcfg.DEFAULTS
    al.update(now_ms, hr_x10, spo2_x10, beat_age_ms, lead_off, finger_off, fault, rhythm)
    if al.active & (1 << HR_LOW): ...
    while seen < al.count:                         # raise/clear events
        kind, raised, t_ms = al.event(seen); seen += 1

An alert is raised when its condition has held for `<name>_on_s` seconds
and cleared when the opposite has held for `clear_s` seconds; value alerts
clear only past the threshold plus a hysteresis band (hr_hyst bpm,
spo2_hyst %). A missing value (no HR, SpO2 NO_READING) neither raises nor
clears a value alert: it holds its state, and the missing signal is
reported by the lead-off / finger-off / fault alerts instead.
Asystole: no QRS for `asystole_s` seconds while the ECG leads are on
(raised at once - the duration is the condition).
Rhythm alarms from lib/rhythm's state bits (`rhythm`: VF 1, AF 2): VF is
raised after `vf_on_s` (default 0: the rhythm analysis already took ~4 s
to judge it) and AF after `af_on_s` of AF (default 30 s); both clear after
`clear_s` without it; while the leads are off they hold. Pass only values the node vouches for: hr_x10 0
when the rate is not valid (the HR alerts then hold).

Guarantees: update() allocates nothing; thresholds are validated when the
object is made (lib/alertcfg.py: unknown name or bad value -> ValueError
naming it; that module leaves the heap again afterwards).
"""
from array import array

from micropython import const

from dsp import zeros

HR_LOW = const(0)
HR_HIGH = const(1)
SPO2_LOW = const(2)
ASYSTOLE = const(3)
LEAD_OFF = const(4)
FINGER_OFF = const(5)
SENSOR_FAULT = const(6)
VF = const(7)
AF = const(8)
# 9 battery_low, 10 battery_critical: raised by the battery monitor
# (lib/battery.py, firmware/lowbatt.py), not by update()
NAMES = ("hr_low", "hr_high", "spo2_low", "asystole", "lead_off", "finger_off", "sensor_fault", "vf", "af",
         "battery_low", "battery_critical")
_N = const(9)
_NEV = const(16)
_MS_MASK = const(0x1FFFFFFF)  # times are ms modulo 2**29 (6.2 days), wrap-safe

class Alerts:
    def __init__(self, thresholds=None):
        import sys
        from alertcfg import check  # validation: needed only here, then unloaded
        t = check(thresholds)
        sys.modules.pop("alertcfg", None)

        self.on_ms = array("i", [t["hr_on_s"] * 1000, t["hr_on_s"] * 1000, t["spo2_on_s"] * 1000, 0,
                                 t["lead_off_on_s"] * 1000, t["finger_off_on_s"] * 1000,
                                 t["sensor_fault_on_s"] * 1000, t["vf_on_s"] * 1000,
                                 t["af_on_s"] * 1000])
        self.clear_ms = t["clear_s"] * 1000
        self.since = zeros(_N)  # when the pending change started
        self.pending = bytearray(_N)
        self.ev = bytearray(_NEV)  # kind | raised << 7
        self.ev_ms = zeros(_NEV)
        self.active = 0
        self.count = 0
        self.hr_lo = t["hr_low"] * 10
        self.hr_hi = t["hr_high"] * 10
        self.hr_h = t["hr_hyst"] * 10
        self.sp_lo = t["spo2_low"] * 10
        self.sp_h = t["spo2_hyst"] * 10
        self.asys_ms = t["asystole_s"] * 1000

    def event(self, i):
        j = i % _NEV
        e = self.ev[j]
        return e & 0x7F, e >> 7 == 1, self.ev_ms[j]

    def update(self, now_ms, hr_x10, spo2_x10, beat_age_ms, lead_off, finger_off, fault, rhythm=0):
        """One step of every alert; a value <= 0 (no reading) skips the
        alerts that need it, which then hold their state. rhythm: lib/rhythm
        state bits (VF 1, AF 2; held while the leads are off)."""
        a = self.active
        # the condition of each alert judged this time (bit k: alert k),
        # then one pass in NAMES order (events keep that order)
        judged = (1 << LEAD_OFF) | (1 << FINGER_OFF) | (1 << SENSOR_FAULT)
        c = 0
        if hr_x10 > 0:
            judged |= (1 << HR_LOW) | (1 << HR_HIGH)
            if hr_x10 < self.hr_lo + (self.hr_h if a & (1 << HR_LOW) else 0):
                c = 1 << HR_LOW
            if hr_x10 > self.hr_hi - (self.hr_h if a & (1 << HR_HIGH) else 0):
                c |= 1 << HR_HIGH
        if spo2_x10 > 0:
            judged |= 1 << SPO2_LOW
            if spo2_x10 < self.sp_lo + (self.sp_h if a & (1 << SPO2_LOW) else 0):
                c |= 1 << SPO2_LOW
        if lead_off:
            c |= 1 << LEAD_OFF
        else:  # no ECG: asystole and the rhythm alarms hold, lead-off speaks
            judged |= (1 << VF) | (1 << AF)
            c |= (rhythm & 3) << VF  # (VF 1, AF 2: AF's bit follows VF's)
            if beat_age_ms >= 0:
                judged |= 1 << ASYSTOLE
                if beat_age_ms >= self.asys_ms:
                    c |= 1 << ASYSTOLE
        if finger_off:
            c |= 1 << FINGER_OFF
        if fault:
            c |= 1 << SENSOR_FAULT
        differ = (c ^ a) & judged
        pending = self.pending
        for k in range(_N):
            if differ >> k & 1:
                self._change(k, c >> k & 1, now_ms)
            elif judged >> k & 1:
                pending[k] = 0  # as it should be: any pending change is off

    def _change(self, k, cond, now):
        """Alert k's condition (cond) is not its state: the change waits
        until the condition has held its time, then becomes an event."""
        if not self.pending[k]:
            self.pending[k] = 1
            self.since[k] = now & _MS_MASK
        need = self.on_ms[k] if cond else self.clear_ms
        if (now - self.since[k]) & _MS_MASK >= need:
            self.pending[k] = 0
            self.active ^= 1 << k
            j = self.count % _NEV
            self.ev[j] = k | (cond << 7)
            self.ev_ms[j] = now & _MS_MASK
            self.count += 1
