"""ECG rhythm on the node: heart rate as monitors report it, ventricular
fibrillation / flutter, atrial fibrillation, and the beats the node
publishes (asystole is lib/alerts.py's: no QRS for asystole_s).

    from qrs import QRSDetector
    from rhythm import Rhythm, VF, AF
    rh = Rhythm(QRSDetector(360))
    rh.feed(samples, -1, 0, len(samples))   # or (ring.buf, ring.mask, a, b)
    while seen < rh.count:                  # published beats, oldest first
        r, f = rh.beat(seen), rh.flags(seen); seen += 1
    rh.hr_x10, rh.hr_q, rh.state            # 0.1 bpm (0: none), 0-100, VF|AF bits

Rhythm owns the feeding of its QRSDetector (rh.qrs) and reads the
detector's filter history in place (no copy of the ECG).

Heart rate: 60 / median of the last 8 RR intervals between two clean
beats (no WIDE, PREMATURE or NOISY flag: qrs.py); during AF a premature
beat counts as clean. hr_q = % of the last 8 beats that were clean. hr_x10 is 0 while VF is judged, before 8 such
RRs, or when under half of the last 8 beats were clean.

VF/VFL (the VF filter of Kuo & Dillman and threshold-crossing counts in
the TCSC manner of Arafat et al., in our integer streaming form): every
0.5 s, on the low-passed ECG decimated to ~90 sps minus its 0.5 s mean,
over the last 3.5 s: leakage of a half-period-delayed copy (< 1/2: a
narrow-band, sine-like signal), share of samples above 1/5 of the peak
(> 0.3: no isoelectric line) and share of samples with a small slope
(< 0.2). Two such windows in a row raise VF (looser limits keep it); two
windows without clear it. Beats from the first VF-like window on are
dropped, none is published while VF is judged, and no rate: flutter
waves are not beats. vf_start / vf_end: the samples the state changed at.

Beats are published in order. A WIDE or NOISY beat is held until the VF
analysis has looked 4.5 s past it (a flutter wave looks like one), and
every beat behind it waits with it: beats come ~0.6 s after their R
peak, up to ~5.5 s behind such a beat.

AF (RR irregularity with the ectopic beats set aside, and no consistent
P wave), judged every 4th RR: over the last 32 RRs between two non-wide
beats - share of Lorenz-plot points (RR[i-1], RR[i]) with a neighbour
within 8 % of the median RR, share of RRs within 8 % of the median,
share of assessable beats with a P wave like the recent ones. All three
low: AF. To enter AF the RR series must also look random: 25 or more
turning points in 30 (a random series has 20 +- 2.3, Dash et al.) is a
pattern, e.g. bigeminy. Ectopy: the more of the window's beats are set
aside (wide), the more scatter AF needs (the density and near limits fall
linearly to 10 % and 50 % at 40 % set aside): the RRs left between
frequent ectopics are perturbed by them (post-ectopic pauses, ectopics
not seen as wide). Over 40 % set aside: no entry (ventricular bigeminy is
not AF), and AF stays only on that scatter. The state holds while over
1/6 of the RRs end in a NOISY beat (noise is not a rhythm). af_start /
af_end date an episode from the middle of the window that showed it to
the middle of the one that ended it.

Guarantees: feed() allocates nothing; integers only (bit-exact across
runtimes); ~1 KB of RAM beyond the QRS detector (32-bit). Non-guarantees:
VT at flutter rates can look like VFL; AF is not told from atrial flutter
with variable block; the published beat stream lags by up to ~5.5 s
behind a wide or noisy beat.
"""
from micropython import const

from dsp import median8, zeros, zeros16

VF = const(1)
AF = const(2)
HOLD_BLOCKS = const(9)  # a wide or noisy beat waits 4.5 s of VF analysis
# lib/qrs.py's beat flags (inlined: a const costs no RAM, an import does)
_WIDE = const(1)
_PREMATURE = const(2)
_NOISY = const(4)
_P_WAVE = const(8)
_P_UNKNOWN = const(16)

_NBEATS = const(32)
_NB = const(8)  # RRs for the rate
_NBLK = const(7)  # VF window: 7 blocks of 0.5 s
_NH = const(32)  # decimated history for the half-period delay (<= 0.35 s)
_NAF = const(32)  # AF window (RRs)
# VF window features in %: leakage below, share above 1/5 peak above, flat
# share below (entering VF; staying in VF)
_VF_LEAK = const(50)
_VF_TC = const(30)
_VF_FLAT = const(20)
_VF_LEAK_STAY = const(62)
_VF_TC_STAY = const(35)
_VF_FLAT_STAY = const(25)
# AF: Lorenz density, RRs near the median, P-wave share, all in % (below:
# AF; stay while below the second set) - set on MIT-BIH DS1
_AF_DENS = const(35)
_AF_NEAR = const(80)
_AF_P = const(65)
_AF_DENS_STAY = const(45)
_AF_NEAR_STAY = const(85)
_AF_P_STAY = const(70)
# the density and near limits at 40 % (and over) of the window's beats set
# aside as ectopic, reached linearly from the limits above at none (DS1's
# AF: 95 % of its windows are at or under 6 % and 46 %)
_AF_DENS_ECT = const(10)
_AF_NEAR_ECT = const(50)
_AF_TPR = const(25)  # turning points (of 30) at or above: a pattern (random: 20 +- 2.3)
# self.v (one array: few attributes keep the instance small):
# [0:32] decimated history, [32:81] 7 blocks x 7 sums (abs, slope, leak
# num, leak den, above 1/5 peak, flat, peak), then the scalars below
_NS = const(7)
_BS = const(32)
_BJ = const(81)  # samples in the current block
_BI = const(82)  # current block slot
_BLOCKS = const(83)  # blocks so far (capped)
_VFN = const(84)  # half period (decimated samples), 0 unknown
_TTC = const(85)  # 1/5 of the last window's peak
_TFL = const(86)  # 1/4 of the last window's mean slope
_LIKE = const(87)  # VF-like windows in a row (negative: unlike)
_HJ = const(88)  # decimated samples so far (mod 2**16)
_MSUM = const(89)  # sum of the baseline window
_RI = const(90)  # next RR slot for the rate
_NRR = const(91)  # RRs for the rate so far (<= 8)
_CLEAN = const(92)  # bit per beat of the last 8: clean
_AI = const(93)  # next AF slot (the oldest RR)
_NAFN = const(94)  # AF RRs so far (<= 32)
_LAST_R = const(95)
_LAST_F = const(96)
_NV = const(97)


class Rhythm:
    def __init__(self, qrs):
        self.qrs = qrs
        fs = qrs.fs
        self.fs = fs
        self.dk = max(1, fs // 90)  # decimation step
        self.bn = (fs // 2) // self.dk  # decimated samples per block (and baseline)
        self.v = zeros(_NV)
        self.bt = zeros(2 * _NBEATS)  # published R samples; R sample of each AF RR's end
        self.fb = bytearray(2 * _NBEATS)  # published flags; AF P wave (0 no, 1 yes, 2 unknown, 3 noisy)
        self.af = zeros16(3 * _NAF)  # AF RRs, their beat numbers (mod 2**15), sort space
        self.rr8 = zeros(_NB)
        self.reset()

    def reset(self):
        self.qrs.reset()
        v = self.v
        for i in range(_NV):
            v[i] = 0
        v[_LAST_R] = -1
        self.vi = 0  # next lp sample for the VF analysis
        self.state = 0
        self.vf_from = -1  # published beats at or after this R sample are dropped
        self.vf_to = -1  # ... up to this one (-1: open)
        self.vf_start = self.vf_end = self.af_start = self.af_end = 0
        self.seen = 0  # next detector beat to judge (AF, rate)
        self.rel = 0  # next detector beat to publish or drop
        self.count = self.dropped = 0
        self.hr_x10 = self.hr_q = 0

    def beat(self, i):
        """R-peak sample of published beat i (count - 32 <= i < count)."""
        return self.bt[i % _NBEATS]

    def flags(self, i):
        return self.fb[i % _NBEATS]

    def feed(self, buf, mask, start, end):
        """Samples buf[i & mask], start <= i < end, to the detector. The VF
        analysis, the beats' rate and AF judgement and their publication run
        at each whole quarter second of the low-passed signal (the detector's
        sample count less its filter delay: a VF block's end), never at the
        end of a call: how the samples are split into calls (how often
        the node drains the FIFO, asleep or awake) changes no output."""
        q = self.qrs
        step = self.fs >> 2
        lag = q.lp_delay  # a quarter second of low-passed samples: when a VF block ends
        a = start
        while a < end:
            b = a + step - (q.n - lag) % step  # to the next quarter second
            if b > end:
                b = end
            q.feed(buf, mask, a, b)
            a = b
            if (q.n - lag) % step:
                return  # mid-slice: the rest comes with the next call
            self._vf()
            while self.seen < q.count:  # new detector beats: rate and AF
                i = self.seen
                self.seen = i + 1
                self._judge(q.beats[i % _NBEATS], q.flag[i % _NBEATS], i)
            self._publish()

    # -- ventricular fibrillation ------------------------------------------

    def _vf(self):
        q = self.qrs
        lr = q.lr
        m = q.m
        dk = self.dk
        bn = self.bn
        v = self.v
        n = q.n - q.lp_delay  # lp samples settled
        vi = self.vi
        if vi == 0:
            vi = bn * dk  # start once the baseline window is in
            if vi > n:
                return
            s = 0
            for j in range(bn):
                s += lr[(vi - (j + 1) * dk) & m]
            v[_MSUM] = s
        msum = v[_MSUM]
        hj = v[_HJ]
        back = bn * dk
        while True:
            # the current block's 7 sums live in locals while it fills, back
            # in v when it is full (for _block()) or the slice ends
            o = _BS + v[_BI] * _NS
            nh = v[_VFN]
            ttc = v[_TTC]
            tfl = v[_TFL]
            bj = v[_BJ]
            sa = v[o]
            sd = v[o + 1]
            ln = v[o + 2]
            ld = v[o + 3]
            tc = v[o + 4]
            fl = v[o + 5]
            mx = v[o + 6]
            while vi < n and bj < bn:
                x = lr[vi & m]
                msum += x - lr[(vi - back) & m]
                h = x - msum // bn  # the low-passed ECG minus its 0.5 s mean
                d = h - v[(hj - 1) & (_NH - 1)]
                v[hj & (_NH - 1)] = h
                if nh:  # leakage of the copy half a period back
                    y = v[(hj - nh) & (_NH - 1)]
                    s = h + y
                    ln += s if s >= 0 else -s
                    ld += (h if h >= 0 else -h) + (y if y >= 0 else -y)
                if h < 0:
                    h = -h
                if d < 0:
                    d = -d
                sa += h
                sd += d
                if h > ttc:
                    tc += 1
                if d < tfl:
                    fl += 1
                if h > mx:
                    mx = h
                hj = (hj + 1) & 0xFFFF
                vi += dk
                bj += 1
            v[o] = sa
            v[o + 1] = sd
            v[o + 2] = ln
            v[o + 3] = ld
            v[o + 4] = tc
            v[o + 5] = fl
            v[o + 6] = mx
            v[_BJ] = bj
            self.vi = vi
            if bj < bn:
                break
            self._block()  # (starts the next block: its sums and _BJ at 0)
        v[_MSUM] = msum
        v[_HJ] = hj

    def _block(self):
        """A 0.5 s block ended: judge the last 3.5 s, start the next block."""
        v = self.v
        v[_BJ] = 0
        if v[_BLOCKS] <= _NBLK:
            v[_BLOCKS] += 1
        sa = sd = ln = ld = tc = fl = mx = 0
        for o in range(_BS, _BS + _NBLK * _NS, _NS):
            sa += v[o]
            sd += v[o + 1]
            ln += v[o + 2]
            ld += v[o + 3]
            tc += v[o + 4]
            fl += v[o + 5]
            if v[o + 6] > mx:
                mx = v[o + 6]
        w = self.bn * _NBLK
        like = False
        if v[_BLOCKS] > _NBLK and sd > 0 and mx >= self.fs >> 1:
            while sa >= 1 << 24:  # pi * sa must stay a small int
                sa >>= 1
                sd >>= 1
            while ld >= 1 << 23:  # 100 * ln too
                ln >>= 1
                ld >>= 1
            if v[_VFN] and ld:
                leak = (ln * 100) // ld
                tc = (tc * 100) // w
                fl = (fl * 100) // w
                if self.state & VF:
                    like = leak < _VF_LEAK_STAY and tc > _VF_TC_STAY and fl < _VF_FLAT_STAY
                else:
                    like = leak < _VF_LEAK and tc > _VF_TC and fl < _VF_FLAT
        # the next window's half period (pi * mean|h| / mean|dh|) and levels
        nh = (sa * 22) // (sd * 7) if sd > 0 else 0
        v[_VFN] = nh if 1 <= nh < _NH else 0
        v[_TTC] = mx // 5
        v[_TFL] = (sd // w) >> 2
        v[_BI] = (v[_BI] + 1) % _NBLK
        o = _BS + v[_BI] * _NS
        for k in range(o, o + _NS):
            v[k] = 0
        # VF after 2 VF-like windows in a row, over after 2 unlike
        lk = v[_LIKE]
        lk = (lk + 1 if lk > 0 else 1) if like else (lk - 1 if lk < 0 else -1)
        if -1000 < lk < 1000:
            v[_LIKE] = lk
        end = self.vi
        span = self.bn * self.dk
        if lk >= 2 and not self.state & VF:
            self.state |= VF
            self.vf_start = end
            self.vf_from = end - (_NBLK + 1) * span  # what the first VF-like window saw
            self.vf_to = -1
        elif lk <= -2 and self.state & VF:
            self.state &= ~VF
            self.vf_end = end
            self.vf_to = end - 2 * span  # the last VF-like window's end

    # -- beats: publish, rate, AF -----------------------------------------

    def _publish(self):
        q = self.qrs
        lag = HOLD_BLOCKS * self.bn * self.dk
        while self.rel < self.seen:
            i = self.rel
            r = q.beats[i % _NBEATS]
            f = q.flag[i % _NBEATS]
            if self.vf_from >= 0 and r >= self.vf_from and (self.vf_to < 0 or r <= self.vf_to):
                self.dropped += 1  # a flutter wave
            elif f & (_WIDE | _NOISY) and self.vi < r + lag and q.count - i < _NBEATS - 4:
                return  # wait: a flutter wave looks like this
            else:
                k = self.count % _NBEATS
                self.bt[k] = r
                self.fb[k] = f
                self.count += 1
            self.rel = i + 1

    def _judge(self, r, f, i):
        """Rate and AF evidence from detector beat i at sample r."""
        v = self.v
        last = v[_LAST_R]
        rr = r - last if last >= 0 else 0
        both = f | v[_LAST_F]
        v[_LAST_R] = r
        v[_LAST_F] = f
        if self.state & VF:
            self.hr_x10 = 0
            return
        # clean: neither beat ectopic or noisy; in AF "premature" means nothing
        clean = not both & ((_WIDE | _NOISY) if self.state & AF else (_WIDE | _PREMATURE | _NOISY))
        c = ((v[_CLEAN] << 1) | (1 if clean else 0)) & 0xFF
        v[_CLEAN] = c
        if rr > 0 and clean:
            k = v[_RI]
            self.rr8[k] = rr
            v[_RI] = (k + 1) & (_NB - 1)
            if v[_NRR] < _NB:
                v[_NRR] += 1
        good = 0
        while c:
            good += c & 1
            c >>= 1
        self.hr_q = (good * 100) >> 3
        if v[_NRR] >= _NB and 2 * good >= _NB:
            med = median8(self.rr8, self.qrs.tmp)  # (the detector's scratch)
            self.hr_x10 = (600 * self.fs + (med >> 1)) // med
        else:
            self.hr_x10 = 0
        if rr > 0 and not both & _WIDE:  # AF evidence: RRs between non-wide beats
            k = v[_AI]
            self.af[k] = rr if rr < 32767 else 32767
            self.af[_NAF + k] = i & 0x7FFF
            self.fb[_NBEATS + k] = 3 if f & _NOISY else (2 if f & _P_UNKNOWN else (1 if f & _P_WAVE else 0))
            self.bt[_NBEATS + k] = r
            k = (k + 1) % _NAF
            v[_AI] = k
            if v[_NAFN] < _NAF:
                v[_NAFN] += 1
            elif k & 3 == 0:
                self._af()  # every 4th RR: O(n^2) Lorenz density

    def _af(self):
        a = self.af  # [0:32] RRs, [32:64] beat numbers, [64:96] sort space
        n = _NAF
        first = self.v[_AI]  # oldest RR: no predecessor in the window
        for k in range(n):  # insertion sort for the median
            x = a[k]
            j = k
            while j > 0 and a[2 * n + j - 1] > x:
                a[2 * n + j] = a[2 * n + j - 1]
                j -= 1
            a[2 * n + j] = x
        med = (a[2 * n + (n >> 1) - 1] + a[2 * n + (n >> 1)]) >> 1
        tol = (med * 2) // 25  # 8 %
        near = pw = known = noisy = tp = 0
        for k in range(n):
            d = a[k] - med
            if -tol <= d <= tol:
                near += 1
            p = self.fb[_NBEATS + k]
            if p < 2:
                known += 1
                pw += p
            elif p > 2:
                noisy += 1
        # Lorenz points (RR[k-1], RR[k]) of the window: pairs within tol
        pairs = 0
        for i in range(1, n):
            ka = (first + i) % n
            xa = a[(ka - 1) % n]
            ya = a[ka]
            if i < n - 1:  # turning point
                d = a[(ka + 1) % n]
                if xa < ya > d or xa > ya < d:
                    tp += 1
            for j in range(i + 1, n):
                kb = (first + j) % n
                d = a[(kb - 1) % n] - xa
                if -tol <= d <= tol:
                    d = a[kb] - ya
                    if -tol <= d <= tol:
                        pairs += 1
        dens = (pairs * 200) // ((n - 1) * (n - 2))  # % of point pairs
        near = (near * 100) // n
        pw = (pw * 100) // known if known >= 8 else 0
        # the window's RRs against the beats they span
        span = ((a[n + (first - 1) % n] - a[n + first]) & 0x7FFF) + 1
        if 6 * noisy > n:
            return  # noise is not a rhythm: hold
        # ectopy: % of the window's beats set aside (wide); the scatter asked
        # for grows with it, from the plain limits (none) to _AF_*_ECT (40 %)
        e = ((span - n) * 100) // span
        if 10 * n < 6 * span:  # over 40 %
            if not self.state & AF:
                return  # ventricular bigeminy / trigeminy is not AF: no entry
            e = 40
        if self.state & AF:
            af = (40 * dens < 40 * _AF_DENS_STAY - (_AF_DENS_STAY - _AF_DENS_ECT) * e
                  and 40 * near < 40 * _AF_NEAR_STAY - (_AF_NEAR_STAY - _AF_NEAR_ECT) * e and pw < _AF_P_STAY)
        else:
            af = (40 * dens < 40 * _AF_DENS - (_AF_DENS - _AF_DENS_ECT) * e
                  and 40 * near < 40 * _AF_NEAR - (_AF_NEAR - _AF_NEAR_ECT) * e and pw < _AF_P and tp < _AF_TPR)
        if af != bool(self.state & AF):
            mid = self.bt[_NBEATS + (first + (n >> 1)) % n]
            self.state ^= AF
            if af:
                self.af_start = mid
            else:
                self.af_end = mid
