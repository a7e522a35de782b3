"""Streaming ECG QRS detector: integer, allocation-free, any rate 100-500 sps.

    from qrs import QRSDetector
    det = QRSDetector(360)                 # sample rate; mains=50 or 60 Hz
    det.feed(samples, -1, 0, len(samples))  # or a Ring: (ring.buf, ring.mask, a, b)
    while seen < det.count:                # new beats, oldest first
        r = det.beat(seen)                 # R-peak sample index (0 = first fed)
        seen += 1
    det.rr, det.hr_x10                     # last RR (samples), HR in 0.1 bpm

Design (Hamilton-Tompkins class, our own rules and tuning on MIT-BIH DS1):
  feature   two boxcar low-passes (zeros near 40 Hz and at the mains
            frequency), a difference over ~20 ms (band-pass peaking near
            12 Hz), |.|, and a ~100 ms moving-window integral (MWI).
  peaks     an MWI maximum ends when the MWI falls to half or ~150 ms pass.
            A peak is held 360 ms: a larger one within 200 ms replaces it; a
            larger, steeper one within 360 ms replaces it if the held peak
            was below the usual QRS level (a tall P wave in front of a QRS).
  decision  threshold = noise + 3/8 (qrs - noise), medians of the last 8
            QRS and 8 noise peaks; 200 ms refractory. T waves: a peak after
            a QRS whose steepest slope is under 1/2 of that QRS's (within
            360 ms) or under 3/8 (within 2/3 RR) is noise. Search-back: 1.5
            median RR (at most 2 s) after a beat with no QRS, the largest
            peak over threshold/2 since (> 360 ms after the beat, T-wave
            slope rule for the first 3/4 RR) is taken. 8 s without a beat
            re-learns the QRS level from the peaks seen meanwhile.
  learning  the first 2 s set the levels from the largest peak; the peaks
            held meanwhile are then decided, so the first beats count.
  location  the R peak is the sample of largest low-passed deviation from
            the QRS onset baseline in the MWI window (delays compensated).

Guarantees: feed() allocates nothing (preallocated arrays, small ints while
inputs stay within +-32767 - larger inputs are clipped); integer arithmetic
only, so CPython and MicroPython give identical beats. A beat is reported
at most ~0.6 s after its R peak (MWI delay + 360 ms hold + peak end), or by
search-back at most 2.6 s after it; beats in the first 2 s come at 2 s.
Sample indices are small ints for 2**30 samples (34 days at 360 sps).
Non-guarantees: no beat classification (PVC vs normal), no VF detection
(flutter waves may be reported as beats); a QRS within 200 ms of another is
not reported.
"""
from micropython import const

from dsp import median8, pow2, zeros, zeros16

_NB = const(8)  # peaks / RRs remembered for the levels
_NBEATS = const(32)  # reported beats kept for readers
_CLIP = const(32767)
_NLEARN = const(16)  # peaks held during the learning period
_NP = const(24)  # P-wave and QRS segment samples (at most)
_QRS_R2X16 = const(10)  # QRS like the template: r^2 >= 10/16 (r >= 0.79)
_P_R2X16 = const(4)  # P wave like the template: r^2 >= 4/16 (r >= 0.5)
# per-beat bookkeeping, one array (few attributes keep the instance small):
# [0:8] RRs between two clean beats, then
_TN = const(8)  # beats in the P template (<= 8)
_QN = const(9)  # beats in the QRS template (<= 8)
_ODD = const(10)  # beats in a row unlike the QRS template
_UN = const(11)  # usual noise / QRS level ratio (1/64)
_UZ = const(12)  # usual largest noise peak / QRS level (1/64)
_QCNT = const(13)  # beat counter for the slow rise of the usual ratios
_QLEARN = const(14)  # beats that set the usual ratios (<= 16)
_NCRR = const(15)  # clean RRs seen (<= 8)
_CI = const(16)  # next clean-RR slot
_PREV_RR = const(17)
_RR_REF = const(18)  # median of the clean RRs
_LAST_F = const(19)  # flags of the last beat
_NZMAX = const(20)  # largest noise peak since the last beat
_FLOOR = const(21)  # lowest MWI since the last QRS
_NBK = const(22)

# beat flags (flags(i)); bits 0-1 are the ones telemetry carries
WIDE = const(1)  # QRS wider than this patient's usual ones (ventricular-looking)
PREMATURE = const(2)  # RR under 7/8 of the recent clean RR median
NOISY = const(4)  # poor signal quality around the beat
P_WAVE = const(8)  # a P wave like the recent ones precedes it
P_UNKNOWN = const(16)  # P wave not assessable (too late, too early, no template)


class QRSDetector:
    def __init__(self, fs, mains=60, shift=0):
        if not 100 <= fs <= 500:
            raise ValueError("QRS detector: sample rate %r outside 100-500 sps" % (fs,))
        if mains not in (50, 60):
            raise ValueError("QRS detector: mains must be 50 or 60 Hz, got %r" % (mains,))
        self.fs = fs
        self.shift = shift  # input >> shift should be ~5 uV per unit (MIT-BIH's)
        self.na = max(1, (fs + 20) // 40)
        self.nb = max(1, (fs + mains // 2) // mains)
        self.k = max(1, (fs + 25) // 50)
        self.nw = max(2, (fs + 5) // 10)
        # samples from an input sample to its effect on lp (centre of both
        # boxcars) and from lp to the MWI peak
        self.lp_delay = (self.na - 1 + self.nb - 1) // 2
        self.ms200 = fs // 5
        self.ms360 = (fs * 36) // 100
        self.pk_wait = (fs * 15) // 100
        self.learn = 2 * fs
        self.relearn = 8 * fs
        # history per filter stage: the R search looks back up to hold +
        # peak end + MWI window (~0.65 s)
        self.ring = pow2((fs * 3) // 4)
        self.m = self.ring - 1
        # the boxcars need only their own length of history
        self.xr = zeros(pow2(self.na + 1))
        self.sr = zeros(pow2(self.nb + 1))
        self.lr = zeros(self.ring)
        self.qrs_lv = zeros(_NB)
        self.noise_lv = zeros(_NB)
        self.rrs = zeros(_NB)
        self.tmp = zeros(_NB)
        self.beats = zeros(_NBEATS)
        self.lrn = zeros(4 * _NLEARN)  # peaks held while learning: v, t, r, slope
        # per beat: flags, bookkeeping, the P-wave and QRS templates
        self.flag = bytearray(_NBEATS)
        self.bk = zeros(_NBK)
        # [0:24] the stretch being judged, [24:48] the P template, [48:72]
        # the QRS template (10-bit values)
        self.tp = zeros16(3 * _NP)
        self.reset()

    def reset(self):
        for a in (self.xr, self.sr, self.lr, self.qrs_lv, self.noise_lv):
            for i in range(len(a)):
                a[i] = 0
        for i in range(_NB):
            self.rrs[i] = self.fs  # 60 bpm until beats are seen
        self.n = 0
        self.sa = self.lp = self.mwi = 0
        self.pk = self.pkn = self.prev = 0
        self.cand = self.cand_n = 0  # peak held for the 360 ms contest
        self.due = self.learn
        self.qi = self.ni = self.ri = 0
        self.thr = 0
        self.qrs_med = self.noise_med = 0
        self.rr_med = self.fs
        self.last_pk = -self.fs  # MWI peak time of the last QRS
        self.last_r = -1
        self.last_slope = 0
        self.sb = self.sb_n = self.sb_r = self.sb_slope = 0
        self.max_seen = 0  # largest peak since the last QRS (re-learning)
        self.nl = 0
        self.learning = True
        self.loc_r = 0
        self.count = 0
        self.rr = 0
        self.hr_x10 = 0
        self.searchbacks = 0
        self.relearns = 0
        bk = self.bk
        for i in range(_NBK):
            bk[i] = 0
        bk[_UN] = 8
        bk[_UZ] = 16
        bk[_RR_REF] = self.fs  # (_PREV_RR 0: no beat is premature before an RR is known)

    def beat(self, i):
        """R-peak sample index of beat number i (count - 32 <= i < count)."""
        return self.beats[i % _NBEATS]

    def flags(self, i):
        """Flags of beat number i (WIDE, PREMATURE, NOISY, P_WAVE, P_UNKNOWN)."""
        return self.flag[i % _NBEATS]

    def feed(self, buf, mask, start, end):
        """Process samples buf[i & mask] for start <= i < end (mask -1 for a
        plain array, ring.mask for a Ring)."""
        if self.n == 0 and end > start:
            self._prime(buf[start & mask] >> self.shift)
        xr = self.xr
        sr = self.sr
        lr = self.lr
        na = self.na
        nb = self.nb
        k = self.k
        nw = self.nw
        n = self.n
        sa = self.sa
        lp = self.lp
        mwi = self.mwi
        pk = self.pk
        pkn = self.pkn
        prev = self.prev
        wait = self.pk_wait
        due = self.due
        sh = self.shift
        m = self.m
        ma = len(xr) - 1
        mb = len(sr) - 1
        bk = self.bk
        fl = bk[_FLOOR]
        for i in range(start, end):
            x = buf[i & mask] >> sh
            if x > _CLIP:
                x = _CLIP
            elif x < -_CLIP:
                x = -_CLIP
            j = n & m
            xr[n & ma] = x
            sa += x - xr[(n - na) & ma]
            sr[n & mb] = sa
            lp += sa - sr[(n - nb) & mb]
            lr[j] = lp
            d = lp - lr[(n - k) & m]
            if d < 0:
                d = -d
            # the difference leaving the window, from the history (no copy)
            e = lr[(n - nw) & m] - lr[(n - nw - k) & m]
            if e < 0:
                e = -e
            mwi += d - e
            n += 1
            if pk:
                if mwi > pk:
                    pk = mwi
                    pkn = n
                elif mwi < (pk >> 1) or n - pkn > wait:
                    bk[_FLOOR] = fl
                    self.n = n  # what the per-peak code sees: never the chunk's start
                    self._peak(pk, pkn)
                    due = self.due
                    fl = bk[_FLOOR]
                    pk = 0
            elif mwi > prev:
                pk = mwi
                pkn = n
            elif mwi < fl:
                fl = mwi  # the lowest MWI since the last QRS: noise lifts it
            prev = mwi
            if n >= due:
                bk[_FLOOR] = fl
                self.n = n
                self._tick(n)
                due = self.due
                fl = bk[_FLOOR]
        bk[_FLOOR] = fl
        self.n = n
        self.sa = sa
        self.lp = lp
        self.mwi = mwi
        self.pk = pk
        self.pkn = pkn
        self.prev = prev

    def _prime(self, x):
        # start as if x had always been there: no step response at sample 0
        x = max(-_CLIP, min(_CLIP, x))
        sa = x * self.na
        lp = sa * self.nb
        for i in range(len(self.xr)):
            self.xr[i] = x
        for i in range(len(self.sr)):
            self.sr[i] = sa
        for i in range(self.ring):
            self.lr[i] = lp
        self.sa = sa
        self.lp = lp

    # -- per peak (a few per second): clarity over speed ---------------------

    def _peak(self, v, t):
        """An MWI peak of height v ended at sample count t."""
        if self.cand:
            dt = t - self.cand_n
            if dt < self.ms200:
                if v > self.cand:
                    self.cand = v
                    self.cand_n = t
                return
            if dt < self.ms360 and v > self.cand and self.cand < self.qrs_med:
                # a larger, steeper peak soon after a smaller-than-usual
                # one: the held one was a P wave (or noise)
                if self._locate(t) > self._locate(self.cand_n):
                    self._noise(self.cand)
                    self.cand = v
                    self.cand_n = t
                    return
            self._decide(self.cand, self.cand_n)
        self.cand = v
        self.cand_n = t
        self._set_due()

    def _set_due(self):
        due = self.last_pk + self.relearn
        if self.n < self.learn:
            due = self.learn
        if self.cand and self.cand_n + self.ms360 < due:
            due = self.cand_n + self.ms360
        if self.count:
            sb = self._sb_due()
            if sb < due:
                due = sb
        self.due = due

    def _sb_due(self):
        """When search-back looks for a missed beat: 1.5 median RR, <= 2 s."""
        return self.last_pk + min(self.rr_med + (self.rr_med >> 1), 2 * self.fs)

    def _tick(self, n):
        if self.cand and n >= self.cand_n + self.ms360:
            v = self.cand
            t = self.cand_n
            self.cand = 0
            self._decide(v, t)
        if n == self.learn:
            self._learned()
        elif self.count and self.sb and self.cand <= self.thr and n >= self._sb_due():
            if self.sb > (self.thr >> 1):
                self.searchbacks += 1
                self._qrs(self.sb, self.sb_n, self.sb_r, self.sb_slope)
            self.sb = 0
        if n >= self.learn and n - self.last_pk >= self.relearn and self.max_seen:
            self._relearn()
        self._set_due()

    def _learned(self):
        self.learning = False
        # the first 2 s: the largest peak sets the QRS level, noise at zero
        m = self.max_seen
        for i in range(_NB):
            self.qrs_lv[i] = (m * 3) >> 2
            self.noise_lv[i] = 0
        self._levels()
        for i in range(self.nl):
            a = self.lrn
            self._classify(a[i], a[_NLEARN + i], a[2 * _NLEARN + i], a[3 * _NLEARN + i])
        self.nl = 0

    def _relearn(self):
        self.relearns += 1
        m = self.max_seen
        for i in range(_NB):
            self.qrs_lv[i] = m >> 1
        self.max_seen = 0
        self.last_pk = self.n
        self._levels()

    def _levels(self):
        q = self.qrs_med = median8(self.qrs_lv, self.tmp)
        z = self.noise_med = median8(self.noise_lv, self.tmp)
        self.thr = z + ((q - z) >> 3) * 3

    def _locate(self, t):
        """Steepest slope of the QRS whose MWI peak ended at t; its R peak
        goes to self.loc_r (no tuple: a tuple would allocate)."""
        lr = self.lr
        m = self.m
        k = self.k
        end = t - 1
        start = end - self.nw - self.k
        base = lr[start & m]
        best = -1
        r = start
        slope = 0
        for i in range(start, end + 1):
            v = lr[i & m] - base
            if v < 0:
                v = -v
            if v > best:
                best = v
                r = i
            d = lr[i & m] - lr[(i - k) & m]
            if d < 0:
                d = -d
            if d > slope:
                slope = d
        r -= self.lp_delay
        self.loc_r = r if r > 0 else 0  # never before the first sample
        return slope

    def _decide(self, v, t):
        if v > self.max_seen:
            self.max_seen = v
        slope = self._locate(t)
        r = self.loc_r
        if self.learning:
            if self.nl < _NLEARN:  # decided once the levels are known
                i = self.nl
                a = self.lrn
                a[i] = v
                a[_NLEARN + i] = t
                a[2 * _NLEARN + i] = r
                a[3 * _NLEARN + i] = slope
                self.nl = i + 1
            return
        self._classify(v, t, r, slope)

    def _classify(self, v, t, r, slope):
        since = t - self.last_pk
        if v > self.thr and since > self.ms200:
            twin = (self.rr_med * 2) // 3
            if twin < self.ms360:
                twin = self.ms360
            ls = self.last_slope
            if (since < self.ms360 and slope < (ls >> 1)) or (
                    since < twin and slope * 8 < ls * 3):
                self._noise(v)  # a T wave
                return
            self._qrs(v, t, r, slope)
            return
        self._noise(v)
        if since > self.ms360 and v > self.sb and (
                slope * 8 >= self.last_slope * 3 or since * 4 > self.rr_med * 3):
            self.sb = v
            self.sb_n = t
            self.sb_r = r
            self.sb_slope = slope

    def _noise(self, v):
        if self.count and v > self.bk[_NZMAX]:
            self.bk[_NZMAX] = v
        self.noise_lv[self.ni] = v
        self.ni = (self.ni + 1) & (_NB - 1)
        self._levels()

    def _qrs(self, v, t, r, slope):
        qm = self.qrs_med  # the levels this beat was judged against
        nm = self.noise_med
        self.qrs_lv[self.qi] = v
        self.qi = (self.qi + 1) & (_NB - 1)
        self._levels()
        rr = 0
        if self.last_r >= 0:
            rr = r - self.last_r
            if rr > 0:
                self.rr = rr
                self.hr_x10 = (600 * self.fs + (rr >> 1)) // rr
                self.rrs[self.ri] = rr
                self.ri = (self.ri + 1) & (_NB - 1)
                self.rr_med = median8(self.rrs, self.tmp)
        f = self._beat_flags(r, rr, v, qm, nm)
        self.flag[self.count % _NBEATS] = f
        self.beats[self.count % _NBEATS] = r
        self.count += 1
        self.last_r = r
        self.last_pk = t
        self.last_slope = slope
        self.bk[_LAST_F] = f
        self.sb = 0
        self.max_seen = 0
        self.bk[_NZMAX] = 0
        self.bk[_FLOOR] = 1 << 29

    # -- per beat: shape, timing and quality flags ---------------------------

    def _beat_flags(self, r, rr, v, qm, nm):
        bk = self.bk
        fs = self.fs
        step = max(1, fs // 90)
        ref = bk[_RR_REF] if bk[_NCRR] >= _NB else self.rr_med
        f = 0
        if rr > 0 and 8 * rr < 7 * ref and 8 * rr < 7 * bk[_PREV_RR]:
            f = PREMATURE
        if rr > 0:
            bk[_PREV_RR] = rr
        # QRS shape (80 ms before R .. 120 ms after) against the template of
        # this patient's usual beats
        nq = min(_NP, ((fs * 20) // 100) // step + 1)
        s0 = r + self.lp_delay - (fs * 8) // 100
        q = self._match(s0, nq, 2 * _NP, bk[_QN], _QRS_R2X16)
        if q == 0:
            f |= WIDE
            bk[_ODD] += 1
            if bk[_ODD] >= _NB and not f & PREMATURE:
                bk[_QN] = bk[_ODD] = 0  # the usual shape changed: learn it again
        elif q == 1:
            bk[_ODD] = 0
        # quality: noise peaks near the QRS level, a QRS far from the usual
        # size, a high MWI floor, or an unusual shape where noise is common
        if qm > 0:
            # noise and largest noise peak against the QRS level, in 1/64,
            # and against this patient's usual ratios (tall T waves are
            # normal for some): after the first 16 beats the usual ratio
            # follows lows at once and highs by 1 every 8 beats
            rn = (nm << 6) // qm
            rz = (bk[_NZMAX] << 6) // qm
            if rn > 255:
                rn = 255
            if rz > 255:
                rz = 255
            fl = bk[_FLOOR]
            rf = (fl << 6) // qm if fl < qm else 64
            un = bk[_UN]
            uz = bk[_UZ]
            noisy = ((rn > 21 and rn > 2 * un) or (rz > 32 and rz > 2 * uz) or v > 2 * qm or 2 * v < qm
                     or rf > 12)
            if not noisy and f & WIDE:
                noisy = ((rn > 13 and rn > un + (un >> 1)) or (rz > 21 and rz > uz + (uz >> 1))
                         or rf > 6)
            if noisy:
                f |= NOISY
            if bk[_QLEARN] < 16:
                bk[_QLEARN] += 1
                bk[_UN] = un + ((rn - un) >> 1)
                bk[_UZ] = uz + ((rz - uz) >> 1)
            else:
                c = (bk[_QCNT] + 1) & 7
                bk[_QCNT] = c
                if rn < un:
                    bk[_UN] = un - 1
                elif rn > un and c == 0:
                    bk[_UN] = un + 1
                if rz < uz:
                    bk[_UZ] = uz - 1
                elif rz > uz and c == 0:
                    bk[_UZ] = uz + 1
        if q == 1 and not f & NOISY or (q == -1 and not f & (PREMATURE | NOISY)):
            self._learn(2 * _NP, bk[_QN], nq)
            if bk[_QN] < 8:
                bk[_QN] += 1
        # P wave before it (300 .. 60 ms before R), like the recent beats'
        if f:
            f |= P_UNKNOWN
        else:
            pa = (fs * 30) // 100
            np = min(_NP, (pa - (fs * 6) // 100) // step + 1)
            p = self._match(r + self.lp_delay - pa, np, _NP, bk[_TN], _P_R2X16)
            if p > -2:
                self._learn(_NP, bk[_TN], np)
                if bk[_TN] < 8:
                    bk[_TN] += 1
            f |= P_WAVE if p == 1 else (P_UNKNOWN if p < 0 else 0)
        if rr > 0 and not (f | bk[_LAST_F]) & (WIDE | PREMATURE | NOISY):
            i = bk[_CI]
            bk[i] = rr
            bk[_CI] = (i + 1) & (_NB - 1)
            if bk[_NCRR] < _NB:
                bk[_NCRR] += 1
            if bk[_NCRR] == _NB:
                bk[_RR_REF] = median8(bk, self.tmp)
        return f

    def _match(self, s0, n, t0, tn, r2x16):
        """Compare n samples (every fs//90-th, from lp index s0, the line
        between the ends removed, scaled to 10 bits, into tp[0:n]) with
        the template at tp[t0:] of tn beats: 1 if r^2 >= r2x16/16, else 0; -1 if the
        template is not ready (tn < 4); -2 if the stretch is out of the
        history or flat (then tp[0:n] is not valid)."""
        m = self.m
        lr = self.lr
        step = max(1, self.fs // 90)
        if s0 <= self.n - self.ring or s0 < 0 or s0 + (n - 1) * step >= self.n:
            return -2
        seg = self.tp
        e0 = lr[s0 & m]
        de = lr[(s0 + (n - 1) * step) & m] - e0
        top = 0
        for j in range(n):
            v = lr[(s0 + j * step) & m] - e0 - (de * j) // (n - 1)
            if v < 0:
                v = -v
            if v > top:
                top = v
        if top == 0:
            return -2
        sh = _bits(top) - 10  # to 10 bits: the products stay small ints
        mean = 0
        for j in range(n):
            v = lr[(s0 + j * step) & m] - e0 - (de * j) // (n - 1)
            v = v >> sh if sh > 0 else v << -sh
            seg[j] = v
            mean += v
        mean //= n
        sxy = sxx = syy = 0
        for j in range(n):
            x = seg[j] - mean
            seg[j] = x
            y = seg[t0 + j]
            sxy += x * y
            sxx += x * x
            syy += y * y
        got = -1
        if tn >= 4 and syy > 0:
            got = 0
            if sxy > 0:
                big = sxx if sxx > syy else syy
                sh = _bits(big) - 12
                if sh > 0:
                    sxy >>= sh
                    sxx >>= sh
                    syy >>= sh
                if 16 * sxy * sxy >= r2x16 * sxx * syy:
                    got = 1
        return got

    def _learn(self, t0, tn, n):
        """Average tp[0:n] (as _match left it) into the template at tp[t0:]
        of tn beats."""
        seg = self.tp
        k = 2 if tn < 8 else 3  # the first beats count more
        for j in range(n):
            if tn:
                seg[t0 + j] += (seg[j] - seg[t0 + j]) >> k
            else:
                seg[t0 + j] = seg[j]


def _bits(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n
