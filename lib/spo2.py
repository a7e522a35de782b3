"""SpO2 by ratio of ratios, per beat, with quality gating.

    from spo2 import SpO2
    ox = SpO2(pulse_detector)              # shares its rate and low-pass
    ox.feed(red, -1, a, b)                 # red samples, same numbering as IR
    ox.beat(k)                             # after pulse k was reported
    ox.spo2_x10                            # 0.1 %, or NO_READING (-1)
    ox.reason                              # why the last beat was refused
    ox.q                                   # % of the last 5 beats that passed
    ox.ac_ir, ox.ac_red                    # the last passed beat's AC (low-pass units)

Per beat (foot to systolic peak of the IR pulse) on the low-passed red and
IR: R = (AC_red / DC_red) / (AC_ir / DC_ir), SpO2 = A - B * R. Defaults
A = 110, B = 25: the linear empirical calibration of the textbook
literature (e.g. Webster (ed.), Design of Pulse Oximeters, IOP 1997, ch. 4;
Maxim's AN6409 shows the same form). It is NOT a calibration of any
sensor: a product calibrates A and B (and may add a quadratic term) against
a CO-oximeter for its optics and passes them in.

A beat counts only if: the pipeline says the finger is on; IR perfusion
index >= min_pi_x100 (0.01 %); red and IR agree in shape over the beat
(correlation r >= 0.9 - motion and ambient light decorrelate them); the IR
amplitude is within 1/2..2x the median of recent beats; R gives a SpO2
between 50 and 101 %. The reading is the median of the last 5 valid beats,
published only while at least 3 of the last 5 beats were valid and the last
valid one is under 5 s old; otherwise spo2_x10 is NO_READING. Never a
made-up number.

Guarantees: no allocation per sample or per beat; integer arithmetic only.
Non-guarantees: accuracy depends on the calibration above; no motion
compensation (beats under motion are refused, not repaired).
"""
from micropython import const

from dsp import zeros, zeros16

NO_READING = const(-1)
_NV = const(5)

# reasons a beat was refused (self.reason)
OK = "ok"
FINGER_OFF = "finger off"
LOW_PERFUSION = "low perfusion"
MOTION = "motion"
OUT_OF_RANGE = "out of range"
NO_SIGNAL = "no signal"


def _bits(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


class SpO2:
    def __init__(self, pulse, a_x10=1100, b_x10=250, min_pi_x100=20):
        self.pulse = pulse
        self.n1 = pulse.n1
        self.a_x10 = a_x10
        self.b_x10 = b_x10
        self.min_pi_x100 = min_pi_x100
        self.ring = pulse.ring  # same numbering and history as the detector
        self.m = pulse.m
        self.mx = pulse.mx  # the boxcar's own history, as the detector's
        self.xr = zeros(self.mx + 1)
        self.ysh = pulse.ysh  # 16-bit words, as the detector's
        self.yr = zeros16(self.ring)
        self.vals = zeros(_NV)
        self.tmp = zeros(_NV)
        self.ok = bytearray(_NV)
        self.reset()

    def reset(self):
        self.n = 0
        self.s1 = 0
        self.k = 0
        self.last_valid = -1
        self.spo2_x10 = NO_READING
        self.r_x1000 = 0
        self.ac_ir = self.ac_red = 0  # the last passed beat's AC, low-passed units
        self.reason = NO_SIGNAL
        self.q = 0  # % of the last 5 beats that passed the gates
        self.finger_on = True
        for i in range(_NV):
            self.ok[i] = 0

    def feed(self, buf, mask, start, end):
        """Red samples, numbered like the IR ones given to the detector."""
        xr = self.xr
        yr = self.yr
        n1 = self.n1
        n = self.n
        s1 = self.s1
        m = self.m
        mx = self.mx
        ysh = self.ysh
        if n == 0 and end > start:
            x0 = buf[start & mask]
            for i in range(mx + 1):
                xr[i] = x0
            for i in range(self.ring):
                yr[i] = (x0 * n1) >> self.ysh
            s1 = x0 * n1
        for i in range(start, end):
            x = buf[i & mask]
            s1 += x - xr[(n - n1) & mx]
            xr[n & mx] = x
            yr[n & m] = s1 >> ysh
            n += 1
        self.n = n
        self.s1 = s1
        if self.last_valid >= 0 and n - self.last_valid > 5 * self.pulse.fs:
            self.spo2_x10 = NO_READING

    def beat(self, k):
        """Evaluate pulse k (just reported by the detector)."""
        v = self._evaluate(k)
        i = self.k
        self.k = (i + 1) % _NV
        if v > 0:
            self.vals[i] = v
            self.ok[i] = 1
            self.last_valid = self.n
        else:
            self.ok[i] = 0
        good = 0
        for j in range(_NV):
            good += self.ok[j]
        self.q = good * (100 // _NV)
        if good >= 3:
            self.spo2_x10 = self._median()
        else:
            self.spo2_x10 = NO_READING

    def _median(self):
        """Median of the valid values among the last _NV beats."""
        m = 0
        for j in range(_NV):
            if self.ok[j]:
                v = self.vals[j]
                p = m
                while p > 0 and self.tmp[p - 1] > v:
                    self.tmp[p] = self.tmp[p - 1]
                    p -= 1
                self.tmp[p] = v
                m += 1
        if m & 1:
            return self.tmp[m >> 1]
        return (self.tmp[(m >> 1) - 1] + self.tmp[m >> 1]) >> 1

    def _evaluate(self, k):
        det = self.pulse
        if not self.finger_on:
            self.reason = FINGER_OFF
            return 0
        foot = det.trough(k)
        top = det.peak(k)
        if top - foot < 2 or self.n - foot >= self.ring or det.n - foot >= det.ring:
            self.reason = NO_SIGNAL
            return 0
        # AC/DC the way the sensor saw the light: with photodiode counts
        # (invert) the foot is the bright end; DC is the brighter level
        fi = det.light(foot)
        ti = det.light(top)
        fr = self.yr[foot & self.m]
        tr = self.yr[top & self.m]
        ir_ac = fi - ti
        red_ac = fr - tr
        if not det.invert:
            ir_ac = -ir_ac
            red_ac = -red_ac
        ir_dc = fi if fi > ti else ti
        red_dc = fr if fr > tr else tr
        sh = self.ysh
        if ir_ac <= 0 or red_ac <= 0 or ir_dc << sh < 1024 or red_dc << sh < 1024:
            self.reason = MOTION
            return 0
        if (ir_ac * 10000) // ir_dc < self.min_pi_x100:
            self.reason = LOW_PERFUSION
            return 0
        if det.amp and (2 * ir_ac < det.amp or ir_ac > 2 * det.amp):
            self.reason = MOTION
            return 0
        if not self._correlated(foot, top, ir_ac, red_ac):
            self.reason = MOTION
            return 0
        nr = (red_ac << 14) // red_dc
        ni = (ir_ac << 14) // ir_dc
        if ni == 0:
            self.reason = LOW_PERFUSION
            return 0
        r = (nr * 1000) // ni
        self.r_x1000 = r
        s = self.a_x10 - (self.b_x10 * r) // 1000
        if s < 500 or s > 1010:
            self.reason = OUT_OF_RANGE
            return 0
        self.reason = OK
        self.ac_ir = ir_ac
        self.ac_red = red_ac
        return s if s < 1000 else 1000

    def _correlated(self, a, b, ir_ac, red_ac):
        """Pearson r >= 0.9 between red and IR over samples a..b, in
        integers kept below 2**30 by shifting each channel down first."""
        det = self.pulse
        yr = self.yr
        m = self.m
        si = _bits(ir_ac) - 10
        sr = _bits(red_ac) - 10
        if si < 0:
            si = 0
        if sr < 0:
            sr = 0
        # det.light(i) - det.light(a), without a call per sample: the IR
        # low-pass difference, negated for photodiode counts (invert)
        iy = det.yr
        g = -1 if det.invert else 1
        bi = iy[a & m]
        br = yr[a & m]
        n = b - a + 1
        mx = my = 0
        for i in range(a, b + 1):
            mx += (g * (iy[i & m] - bi)) >> si
            my += (yr[i & m] - br) >> sr
        mx //= n
        my //= n
        sxx = syy = sxy = 0
        for i in range(a, b + 1):
            x = ((g * (iy[i & m] - bi)) >> si) - mx
            y = ((yr[i & m] - br) >> sr) - my
            sxx += x * x
            syy += y * y
            sxy += x * y
        if sxy <= 0:
            return False
        top = sxx if sxx > syy else syy
        sh = _bits(top) - 12
        if sh > 0:
            sxx >>= sh
            syy >>= sh
            sxy >>= sh
        return sxy * sxy * 16 >= sxx * syy * 13  # r^2 >= 0.8125: r >= 0.9
