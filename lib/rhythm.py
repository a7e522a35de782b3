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
beats that were clean. hr_x10 is 0 while VF is judged, before 4 clean
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

from dsp import median8, zeros
from qrs import NOISY, P_UNKNOWN, P_WAVE, PREMATURE, WIDE

VF = const(1)
AF = const(2)
ASYS = const(4)
ASYS_S = const(4)

_NBEATS = const(32)
_NB = const(8)  # RRs for the rate
_NBLK = const(8)  # VF window: up to 8 blocks of 0.5 s
_NH = const(64)  # decimated history for the half-period delay
_NAF = const(32)  # AF window (RRs)
_HOLD_BLOCKS = const(9)  # a wide beat waits 4.5 s of VF analysis
# block sums: abs, slope, leak num, leak den, above 1/5 peak, flat, peak
_S_ABS = const(0)
_S_DIF = const(1)
_S_LN = const(2)
_S_LD = const(3)
_S_TC = const(4)
_S_FL = const(5)
_S_MX = const(6)
_NS = const(7)


class Rhythm:
    def __init__(self, qrs, af_enter=(35, 80, 65), af_stay=(45, 85, 70), vf_enter=(50, 30, 20),
                 vf_stay=(62, 35, 25), vf_blocks=7, vf_confirm=2):
        self.qrs = qrs
        fs = qrs.fs
        self.fs = fs
        self.dk = max(1, fs // 90)  # decimation step
        self.bn = (fs // 2) // self.dk  # decimated samples per block
        self.mn = self.bn  # baseline: mean of the last 0.5 s
        self.chunk = fs // 4  # detector feed slice: the history stays in its rings
        self.hist = zeros(_NH)
        self.bs = zeros(_NBLK * _NS)
        self.out = zeros(_NBEATS)
        self.oflag = bytearray(_NBEATS)
        self.rr8 = zeros(_NB)
        self.tmp = zeros(_NB)
        self.af_rr = zeros(_NAF)
        self.af_pw = bytearray(_NAF)  # 0 no P, 1 P wave, 2 unknown
        self.af_bi = zeros(_NAF)  # beat number of each RR's end
        self.af_t = zeros(_NAF)  # R sample of each RR's end
        self.af_sort = zeros(_NAF)
        self.enter = af_enter
        self.stay = af_stay
        self.nblk = vf_blocks
        self.confirm = vf_confirm
        self.vf_enter = vf_enter
        self.vf_stay = vf_stay
        self.reset()

    def reset(self):
        self.qrs.reset()
        self.vi = 0  # next lp sample for the VF analysis
        self.msum = 0
        self.hj = 0
        self.bj = 0  # samples in the current block
        self.bi = 0  # current block slot
        self.blocks = 0
        self.vf_n = 0  # half period (decimated samples), 0 unknown
        self.thr_tc = self.thr_fl = 0
        self.leak = 100
        self.tcsc = self.flat = self.peak = 0
        for i in range(_NBLK * _NS):
            self.bs[i] = 0
        for i in range(_NH):
            self.hist[i] = 0
        self.like = 0  # VF-like windows in a row
        self.unlike = 0
        self.state = 0
        self.vf_from = -1  # published beats at or after this R sample are dropped
        self.vf_to = -1  # ... up to this one (-1: open)
        self.vf_start = self.vf_end = 0
        self.af_start = self.af_end = 0
        self.asys_start = self.asys_end = 0
        self.vf_episodes = 0
        self.seen = 0  # next detector beat to judge (AF, rate)
        self.rel = 0  # next detector beat to publish or drop
        self.count = 0
        self.dropped = 0
        self.hr_x10 = 0
        self.hr_q = 0
        self.ri = self.nrr = 0
        self.clean8 = 0  # bit per beat of the last 8: clean
        self.ai = self.nrr_af = 0
        self.last_r = -1
        self.last_f = 0
        self.asys_last = -1
        self.af_dens = self.af_near = self.af_pf = 0
        self.leads_on = True
        self.trace = None

    # -- outputs --------------------------------------------------------

    def beat(self, i):
        """R-peak sample of published beat i (count - 32 <= i < count)."""
        return self.out[i % _NBEATS]

    def flags(self, i):
        return self.oflag[i % _NBEATS]

    def analysed(self):
        """Samples the VF analysis has covered (its windows end here)."""
        return self.vi

    # -- input ----------------------------------------------------------

    def feed(self, buf, mask, start, end):
        q = self.qrs
        a = start
        while a < end:
            b = a + self.chunk if end - a > self.chunk else end
            q.feed(buf, mask, a, b)
            self._vf()
            self._beats()
            a = b
        self._asystole()

    def flush(self):
        """End of the recording: publish the beats still held for the VF
        check (none while VF is on). The node never needs this."""
        if not self.state & VF:
            self.vi += _HOLD_BLOCKS * self.bn * self.dk
            self._publish()
            self.vi -= _HOLD_BLOCKS * self.bn * self.dk

    # -- ventricular fibrillation ------------------------------------------

    def _vf(self):
        q = self.qrs
        lr = q.lr
        m = q.m
        dk = self.dk
        n = q.n - q.lp_delay  # lp samples settled
        vi = self.vi
        if vi == 0 and n > 0:
            vi = self.mn * dk  # start once the baseline window is in
            if vi > n:
                return
            s = 0
            for j in range(self.mn):
                s += lr[(vi - (j + 1) * dk) & m]
            self.msum = s
        hist = self.hist
        bs = self.bs
        o = self.bi * _NS
        mn = self.mn
        msum = self.msum
        hj = self.hj
        nh = self.vf_n
        ttc = self.thr_tc
        tfl = self.thr_fl
        while vi < n:
            x = lr[vi & m]
            msum += x - lr[(vi - mn * dk) & m]
            h = x - msum // mn
            prev = hist[(hj - 1) & (_NH - 1)]
            hist[hj & (_NH - 1)] = h
            ah = h if h >= 0 else -h
            d = h - prev
            if d < 0:
                d = -d
            bs[o + _S_ABS] += ah
            bs[o + _S_DIF] += d
            if nh:
                y = hist[(hj - nh) & (_NH - 1)]
                s = h + y
                bs[o + _S_LN] += s if s >= 0 else -s
                bs[o + _S_LD] += ah + (y if y >= 0 else -y)
            if ah > ttc:
                bs[o + _S_TC] += 1
            if d < tfl:
                bs[o + _S_FL] += 1
            if ah > bs[o + _S_MX]:
                bs[o + _S_MX] = ah
            hj += 1
            vi += dk
            self.bj += 1
            if self.bj >= self.bn:
                self.vi = vi
                self.msum = msum
                self.hj = hj
                self._block()
                o = self.bi * _NS
                nh = self.vf_n
                ttc = self.thr_tc
                tfl = self.thr_fl
        self.vi = vi
        self.msum = msum
        self.hj = hj

    def _block(self):
        """A 0.5 s block ended: judge the last 4 s, start the next block."""
        bs = self.bs
        self.bj = 0
        self.blocks += 1
        sa = sd = ln = ld = tc = fl = mx = 0
        for b in range(self.nblk):
            o = b * _NS
            sa += bs[o + _S_ABS]
            sd += bs[o + _S_DIF]
            ln += bs[o + _S_LN]
            ld += bs[o + _S_LD]
            tc += bs[o + _S_TC]
            fl += bs[o + _S_FL]
            if bs[o + _S_MX] > mx:
                mx = bs[o + _S_MX]
        w = self.bn * self.nblk
        like = False
        if self.blocks >= self.nblk + 1 and sd > 0 and mx > 0:
            while sa >= 1 << 24:  # pi * sa must stay a small int
                sa >>= 1
                sd >>= 1
            while ld >= 1 << 28:
                ln >>= 1
                ld >>= 1
            # the last window's features, in % (diagnostics and tests)
            self.leak = (ln * 100) // ld if ld and self.vf_n else 100
            self.tcsc = (tc * 100) // w
            self.flat = (fl * 100) // w
            self.peak = mx
            lim = self.vf_stay if self.state & VF else self.vf_enter
            like = (self.leak < lim[0] and self.tcsc > lim[1] and self.flat < lim[2]
                    and mx >= self.qrs.fs >> 1)
        # next window's half period (pi * mean|h| / mean|dh|) and levels
        nh = (sa * 22) // (sd * 7) if sd > 0 else 0
        self.vf_n = nh if 1 <= nh < _NH else 0
        self.thr_tc = mx // 5
        self.thr_fl = (sd // w) >> 2 if w else 0
        self.bi = (self.bi + 1) % self.nblk
        o = self.bi * _NS
        for k in range(_NS):
            bs[o + k] = 0
        self._vf_state(like)
        if self.trace is not None:
            self.trace(self)

    def _vf_state(self, like):
        end = self.vi  # the window [end - 4 s, end) was judged
        if like:
            self.like += 1
            self.unlike = 0
        else:
            self.unlike += 1
            self.like = 0
        if not self.state & VF and self.like >= self.confirm:
            self.state |= VF
            self.vf_episodes += 1
            self.vf_start = end
            # drop what the first VF-like window covered
            self.vf_from = end - (self.nblk + self.confirm - 1) * self.bn * self.dk
            self.vf_to = -1
        elif self.state & VF and self.unlike >= 2:
            self.state &= ~VF
            self.vf_end = end
            # the last VF-like window ended one block before
            self.vf_to = end - 2 * self.bn * self.dk

    # -- beats: publish, rate, AF -----------------------------------------

    def _beats(self):
        q = self.qrs
        while self.seen < q.count:
            i = self.seen
            self.seen = i + 1
            if i < q.count - _NBEATS:
                continue  # fell out of the detector's ring (never in practice)
            self._judge(q.beat(i), q.flags(i), i)
        self._publish()

    def _publish(self):
        q = self.qrs
        lag = _HOLD_BLOCKS * self.bn * self.dk
        while self.rel < self.seen:
            i = self.rel
            r = q.beat(i)
            f = q.flags(i)
            if self.vf_from >= 0 and r >= self.vf_from and (self.vf_to < 0 or r <= self.vf_to):
                self.dropped += 1  # a flutter wave
                self.rel = i + 1
                continue
            if f & WIDE and self.vi < r + lag and q.count - i < _NBEATS - 4:
                return  # wait: a flutter wave looks like a wide beat
            self.rel = i + 1
            k = self.count % _NBEATS
            self.out[k] = r
            self.oflag[k] = f
            self.count += 1

    def _judge(self, r, f, i):
        """Rate and AF evidence from detector beat i at sample r."""
        rr = r - self.last_r if self.last_r >= 0 else 0
        pf = self.last_f
        self.last_r = r
        self.last_f = f
        if self.state & VF:
            self.hr_x10 = 0
            return
        clean = not (f | pf) & (WIDE | PREMATURE | NOISY)
        self.clean8 = ((self.clean8 << 1) | (1 if clean else 0)) & 0xFF
        af = self.state & AF
        if rr > 0 and (clean or (af and not (f | pf) & (WIDE | NOISY))):
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
        if self.nrr >= 4 and 2 * good >= _NB:
            med = self._median_rr()
            self.hr_x10 = (600 * self.fs + (med >> 1)) // med
        else:
            self.hr_x10 = 0
        if rr > 0 and not (f | pf) & WIDE:
            self._af(rr, f, i, r)

    def _median_rr(self):
        n = self.nrr
        if n >= _NB:
            return median8(self.rr8, self.tmp)
        t = self.tmp
        for k in range(n):  # insertion sort of the first n
            v = self.rr8[k]
            j = k
            while j > 0 and t[j - 1] > v:
                t[j] = t[j - 1]
                j -= 1
            t[j] = v
        return (t[(n - 1) >> 1] + t[n >> 1]) >> 1

    def _af(self, rr, f, i, r):
        k = self.ai
        self.af_rr[k] = rr
        self.af_pw[k] = 2 if f & P_UNKNOWN else (1 if f & P_WAVE else 0)
        self.af_bi[k] = i
        self.af_t[k] = r
        self.ai = (k + 1) % _NAF
        if self.nrr_af < _NAF:
            self.nrr_af += 1
        elif self.ai & 3 == 0:
            self._af_decide()  # every 4th RR: O(n^2) Lorenz density

    def _af_decide(self):
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
        pf = (pw * 100) // known if known >= 8 else 0
        self.af_dens = dens
        self.af_near = near
        self.af_pf = pf
        # the window's RRs against the beats they span
        span = self.af_bi[(first - 1) % n] - self.af_bi[first] + 1
        if 10 * n < 6 * span:
            return  # too many beats set aside (e.g. ventricular bigeminy): hold
        lim = self.stay if self.state & AF else self.enter
        af = dens < lim[0] and near < lim[1] and pf < lim[2]
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
