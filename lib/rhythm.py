"""ECG rhythm on the node: heart rate as monitors report it, ventricular
fibrillation / flutter, atrial fibrillation and asystole, and the beats
the node publishes.

    from qrs import QRSDetector
    from rhythm import Rhythm, VF, AF, ASYS
    rh = Rhythm(QRSDetector(360))
    rh.feed(samples, -1, 0, len(samples))   # or (ring.buf, ring.mask, a, b)
    while seen < rh.count:                  # published beats, oldest first
        r, f = rh.beat(seen), rh.flags(seen); seen += 1
    rh.hr_x10, rh.hr_q, rh.state            # 0.1 bpm (0: none), 0-100, VF|AF|ASYS bits

Rhythm owns the feeding of its QRSDetector (rh.qrs) and reads the
detector's filter history in place (no copy of the ECG).

Heart rate: 60 / median of the last 8 RR intervals between two clean
beats (no WIDE, PREMATURE or NOISY flag: qrs.py); during AF every RR
between two non-wide, non-noisy beats counts. hr_q = % of the last 8
beats that were clean. hr_x10 is 0 while VF is judged, before 8 clean
RRs, or when under half of the last 8 beats were clean.

VF/VFL (the VF filter of Kuo & Dillman and threshold-crossing counts in
the TCSC manner of Arafat et al., our integer streaming form): every
0.5 s, on the low-passed ECG decimated to ~90 sps minus its 0.5 s mean,
over the last 4 s: leakage of a half-period-delayed copy (< 1/2: a
narrow-band, sine-like signal), share of samples above 1/5 of the peak
(> 0.3: no isoelectric line) and share of samples with a small slope
(< 0.2). Two such windows in a row raise VF; two windows without clear
it. While VF is judged (and for the 4.5 s of analysis that declared
it) no beat is published and no rate: flutter waves are not beats.

Beats are published in order. A WIDE beat is held until the VF analysis
has looked 4.5 s past it (a flutter wave looks like one), and every beat
behind it waits with it: beats come ~0.6 s after their R peak, up to
~5.5 s behind a wide one.

AF (RR irregularity with the ectopic beats set aside, and no consistent
P wave): over the last 32 RRs between two non-wide beats - share of
Lorenz-plot points (RR[i-1], RR[i]) with a neighbour within 8 % of the
median RR, share of RRs within 8 % of the median, share of assessable
beats with a P wave like the recent ones. All three low: AF. The state
holds while the 32 RRs span too many excluded beats (ventricular
bigeminy is not AF). An episode is dated from the middle of the window
that showed it to the middle of the one that ended it.

Asystole: no QRS for ASYS_S seconds (qrs beats, published or not) while
`leads_on`; it ends with the next QRS.

Guarantees: feed() allocates nothing; integers only (bit-exact across
runtimes); RAM ~1 KB beyond the QRS detector. Non-guarantees: VT at
flutter rates can look like VFL; AF is not told from atrial flutter
with variable block; the published beat stream lags by up to ~5.5 s
behind a wide beat.
"""
from micropython import const

from dsp import median8, zeros, zeros16

VF = const(1)
AF = const(2)
ASYS = const(4)
ASYS_S = const(4)
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
HOLD_BLOCKS = const(9)  # a wide or noisy beat waits 4.5 s of VF analysis
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
# per-block sums: abs, slope, leak num, leak den, above 1/5 peak, flat, peak
_NS = const(7)
# VF analysis state (one array: few attributes keep the instance small)
_BJ = const(0)  # samples in the current block
_BI = const(1)  # current block slot
_BLOCKS = const(2)  # blocks so far (capped)
_VFN = const(3)  # half period (decimated samples), 0 unknown
_TTC = const(4)  # 1/5 of the last window's peak
_TFL = const(5)  # 1/4 of the last window's mean slope
_LIKE = const(6)  # VF-like windows in a row (negative: unlike)
_HJ = const(7)  # decimated samples so far (history index)


class Rhythm:
    def __init__(self, qrs):
        self.qrs = qrs
        fs = qrs.fs
        self.fs = fs
        self.dk = max(1, fs // 90)  # decimation step
        self.bn = (fs // 2) // self.dk  # decimated samples per block (and baseline)
        self.hist = zeros(_NH)
        self.bs = zeros(_NBLK * _NS)
        self.vs = zeros(8)
        self.out = zeros(_NBEATS)
        self.oflag = bytearray(_NBEATS)
        self.rr8 = zeros(_NB)
        self.tmp = zeros(_NB)
        self.af_rr = zeros16(_NAF)
        self.af_pw = bytearray(_NAF)  # 0 no P, 1 P wave, 2 unknown
        self.af_bi = zeros16(_NAF)  # beat number of each RR's end (mod 2**15)
        self.af_t = zeros(_NAF)  # R sample of each RR's end
        self.af_sort = zeros16(_NAF)
        self.reset()

    def reset(self):
        self.qrs.reset()
        self.vi = 0  # next lp sample for the VF analysis
        self.msum = 0
        for i in range(_NBLK * _NS):
            self.bs[i] = 0
        for i in range(8):
            self.vs[i] = 0
        self.state = 0
        self.vf_from = -1  # published beats at or after this R sample are dropped
        self.vf_to = -1  # ... up to this one (-1: open)
        self.vf_start = self.vf_end = 0
        self.af_start = self.af_end = 0
        self.asys_start = self.asys_end = 0
        self.seen = 0  # next detector beat to judge (AF, rate)
        self.rel = 0  # next detector beat to publish or drop
        self.count = 0
        self.dropped = 0
        self.hr_x10 = self.hr_q = 0
        self.ri = self.nrr = 0
        self.clean8 = 0  # bit per beat of the last 8: clean
        self.ai = self.nrr_af = 0
        self.last_r = self.asys_last = -1
        self.last_f = 0
        self.leads_on = True

    def beat(self, i):
        """R-peak sample of published beat i (count - 32 <= i < count)."""
        return self.out[i % _NBEATS]

    def flags(self, i):
        return self.oflag[i % _NBEATS]

    def feed(self, buf, mask, start, end):
        q = self.qrs
        step = self.fs >> 2  # slices of 0.25 s: the history stays in the detector's rings
        a = start
        while a < end:
            b = a + step if end - a > step else end
            q.feed(buf, mask, a, b)
            self._vf()
            self._beats()
            a = b
        self._asystole()

    # -- ventricular fibrillation ------------------------------------------

    def _vf(self):
        q = self.qrs
        lr = q.lr
        m = q.m
        dk = self.dk
        bn = self.bn
        n = q.n - q.lp_delay  # lp samples settled
        vi = self.vi
        if vi == 0:
            vi = bn * dk  # start once the baseline window is in
            if vi > n:
                return
            s = 0
            for j in range(bn):
                s += lr[(vi - (j + 1) * dk) & m]
            self.msum = s
        hist = self.hist
        bs = self.bs
        vs = self.vs
        o = vs[_BI] * _NS
        msum = self.msum
        hj = vs[_HJ]
        nh = vs[_VFN]
        ttc = vs[_TTC]
        tfl = vs[_TFL]
        while vi < n:
            x = lr[vi & m]
            msum += x - lr[(vi - bn * dk) & m]
            h = x - msum // bn  # the low-passed ECG minus its 0.5 s mean
            d = h - hist[(hj - 1) & (_NH - 1)]
            hist[hj & (_NH - 1)] = h
            if h < 0:
                h = -h
            if d < 0:
                d = -d
            bs[o] += h
            bs[o + 1] += d
            if nh:  # leakage of the copy half a period back
                y = hist[(hj - nh) & (_NH - 1)]
                s = hist[hj & (_NH - 1)] + y
                bs[o + 2] += s if s >= 0 else -s
                bs[o + 3] += h + (y if y >= 0 else -y)
            if h > ttc:
                bs[o + 4] += 1
            if d < tfl:
                bs[o + 5] += 1
            if h > bs[o + 6]:
                bs[o + 6] = h
            hj = (hj + 1) & 0xFFFF
            vi += dk
            vs[_BJ] += 1
            if vs[_BJ] >= bn:
                self.vi = vi
                self._block()
                o = vs[_BI] * _NS
                nh = vs[_VFN]
                ttc = vs[_TTC]
                tfl = vs[_TFL]
        self.vi = vi
        self.msum = msum
        vs[_HJ] = hj

    def _block(self):
        """A 0.5 s block ended: judge the last 3.5 s, start the next block."""
        bs = self.bs
        vs = self.vs
        vs[_BJ] = 0
        if vs[_BLOCKS] <= _NBLK:
            vs[_BLOCKS] += 1
        sa = sd = ln = ld = tc = fl = mx = 0
        for o in range(0, _NBLK * _NS, _NS):
            sa += bs[o]
            sd += bs[o + 1]
            ln += bs[o + 2]
            ld += bs[o + 3]
            tc += bs[o + 4]
            fl += bs[o + 5]
            if bs[o + 6] > mx:
                mx = bs[o + 6]
        w = self.bn * _NBLK
        like = False
        if vs[_BLOCKS] > _NBLK and sd > 0 and mx >= self.fs >> 1:
            while sa >= 1 << 24:  # pi * sa must stay a small int
                sa >>= 1
                sd >>= 1
            while ld >= 1 << 23:  # 100 * ln too
                ln >>= 1
                ld >>= 1
            if vs[_VFN] and ld:
                leak = (ln * 100) // ld
                tc = (tc * 100) // w
                fl = (fl * 100) // w
                if self.state & VF:
                    like = leak < _VF_LEAK_STAY and tc > _VF_TC_STAY and fl < _VF_FLAT_STAY
                else:
                    like = leak < _VF_LEAK and tc > _VF_TC and fl < _VF_FLAT
        # the next window's half period (pi * mean|h| / mean|dh|) and levels
        nh = (sa * 22) // (sd * 7) if sd > 0 else 0
        vs[_VFN] = nh if 1 <= nh < _NH else 0
        vs[_TTC] = mx // 5
        vs[_TFL] = (sd // w) >> 2
        vs[_BI] = (vs[_BI] + 1) % _NBLK
        o = vs[_BI] * _NS
        for k in range(o, o + _NS):
            bs[k] = 0
        # VF after 2 VF-like windows in a row, over after 2 unlike
        lk = vs[_LIKE]
        lk = (lk + 1 if lk > 0 else 1) if like else (lk - 1 if lk < 0 else -1)
        if -1000 < lk < 1000:
            vs[_LIKE] = lk
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

    def _beats(self):
        q = self.qrs
        while self.seen < q.count:
            i = self.seen
            self.seen = i + 1
            if i >= q.count - _NBEATS:  # (always: the detector's ring holds 32)
                self._judge(q.beat(i), q.flags(i), i)
        self._publish()

    def _publish(self):
        q = self.qrs
        lag = HOLD_BLOCKS * self.bn * self.dk
        while self.rel < self.seen:
            i = self.rel
            r = q.beat(i)
            f = q.flags(i)
            if self.vf_from >= 0 and r >= self.vf_from and (self.vf_to < 0 or r <= self.vf_to):
                self.dropped += 1  # a flutter wave
            elif f & (_WIDE | _NOISY) and self.vi < r + lag and q.count - i < _NBEATS - 4:
                return  # wait: a flutter wave looks like this
            else:
                k = self.count % _NBEATS
                self.out[k] = r
                self.oflag[k] = f
                self.count += 1
            self.rel = i + 1

    def _judge(self, r, f, i):
        """Rate and AF evidence from detector beat i at sample r."""
        rr = r - self.last_r if self.last_r >= 0 else 0
        pf = self.last_f
        self.last_r = r
        self.last_f = f
        if self.state & VF:
            self.hr_x10 = 0
            return
        both = f | pf
        clean = not both & (_WIDE | _PREMATURE | _NOISY)
        self.clean8 = ((self.clean8 << 1) | (1 if clean else 0)) & 0xFF
        if rr > 0 and (clean or (self.state & AF and not both & (_WIDE | _NOISY))):
            self.rr8[self.ri] = rr
            self.ri = (self.ri + 1) & (_NB - 1)
            if self.nrr < _NB:
                self.nrr += 1
        good = 0
        c = self.clean8
        while c:
            good += c & 1
            c >>= 1
        self.hr_q = (good * 100) >> 3
        if self.nrr >= _NB and 2 * good >= _NB:
            med = median8(self.rr8, self.tmp)
            self.hr_x10 = (600 * self.fs + (med >> 1)) // med
        else:
            self.hr_x10 = 0
        if rr > 0 and not both & _WIDE:
            k = self.ai
            self.af_rr[k] = rr if rr < 32767 else 32767
            self.af_pw[k] = 2 if f & _P_UNKNOWN else (1 if f & _P_WAVE else 0)
            self.af_bi[k] = i & 0x7FFF
            self.af_t[k] = r
            self.ai = (k + 1) % _NAF
            if self.nrr_af < _NAF:
                self.nrr_af += 1
            elif self.ai & 3 == 0:
                self._af()  # every 4th RR: O(n^2) Lorenz density

    def _af(self):
        rrs = self.af_rr
        srt = self.af_sort
        n = _NAF
        for k in range(n):  # insertion sort for the median
            v = rrs[k]
            j = k
            while j > 0 and srt[j - 1] > v:
                srt[j] = srt[j - 1]
                j -= 1
            srt[j] = v
        med = (srt[(n >> 1) - 1] + srt[n >> 1]) >> 1
        tol = (med * 2) // 25  # 8 %
        near = pw = known = 0
        for k in range(n):
            d = rrs[k] - med
            if -tol <= d <= tol:
                near += 1
            p = self.af_pw[k]
            if p < 2:
                known += 1
                pw += p
        # Lorenz points (RR[k-1], RR[k]) of the window: pairs within tol
        first = self.ai  # oldest RR: no predecessor in the window
        pairs = 0
        for a in range(1, n):
            ka = (first + a) % n
            xa = rrs[(ka - 1) % n]
            ya = rrs[ka]
            for b in range(a + 1, n):
                kb = (first + b) % n
                dx = rrs[(kb - 1) % n] - xa
                if -tol <= dx <= tol:
                    dy = rrs[kb] - ya
                    if -tol <= dy <= tol:
                        pairs += 1
        dens = (pairs * 200) // ((n - 1) * (n - 2))  # % of point pairs
        near = (near * 100) // n
        pw = (pw * 100) // known if known >= 8 else 0
        # the window's RRs against the beats they span
        span = ((self.af_bi[(first - 1) % n] - self.af_bi[first]) & 0x7FFF) + 1
        if 10 * n < 6 * span:
            return  # too many beats set aside (e.g. ventricular bigeminy): hold
        if self.state & AF:
            af = dens < _AF_DENS_STAY and near < _AF_NEAR_STAY and pw < _AF_P_STAY
        else:
            af = dens < _AF_DENS and near < _AF_NEAR and pw < _AF_P
        mid = self.af_t[(first + (n >> 1)) % n]
        if af and not self.state & AF:
            self.state |= AF
            self.af_start = mid
        elif not af and self.state & AF:
            self.state &= ~AF
            self.af_end = mid

    # -- asystole -------------------------------------------------------

    def _asystole(self):
        q = self.qrs
        last = q.last_r
        if self.state & ASYS:
            if last != self.asys_last:  # a QRS again
                self.state &= ~ASYS
                self.asys_end = last if last > self.asys_start else self.asys_start
            elif not self.leads_on:
                self.state &= ~ASYS
                self.asys_end = q.n
        elif self.leads_on and q.n - (last if last > 0 else 0) >= ASYS_S * self.fs:
            self.state |= ASYS
            self.asys_start = q.n
            self.asys_last = last
