"""Streaming PPG pulse detector, pulse rate, signal quality and perfusion.

    from ppg import PulseDetector
    det = PulseDetector(125)               # sample rate 50-250 sps
    det.feed(ir, -1, 0, len(ir))           # or (ring.buf, ring.mask, a, b)
    while seen < det.count:
        p = det.peak(seen)                 # systolic peak sample index
        seen += 1
    det.hr_x10, det.sqi, det.pi_x100       # 0.1 bpm, 0..100, PI in 0.01 %

Input: one PPG channel, DC included, 0..2**17 (the caller shifts wider ADC
words down; values are clipped). invert=True for photodiode counts (more
blood, less light: the pulse points down), False for a pleth that already
points up (a monitor's PLETH output). light(i) gives the low-passed signal
the right way up for AC/DC work either way.

Design (Elgendi's two moving averages, integer and streaming):
  band-pass  a ~60 ms boxcar (zero near 16 Hz) minus a ~0.75 s centred
             moving average (baseline): pulses keep their shape.
  blocks     u = max(bp, 0); a block of interest is where the ~111 ms mean
             of u exceeds the ~667 ms mean of u plus 1/64 of its long-run
             mean; a block at least ~111 ms wide holds one pulse, whose peak
             is the block's largest bp sample. Two pulses closer than 300 ms
             (200 bpm) keep the larger.
  rate       median of the last 8 inter-beat intervals (IBI), 0.1 bpm.
  quality    sqi = % of the last 8 beats whose amplitude is within 1/2..2x
             the median amplitude and whose IBI is within 25 % of the median.
  perfusion  pi_x100 = 10000 * (peak - trough) / peak of the low-passed
             signal (AC over DC, in 0.01 %), per beat, median of 8.

Guarantees: feed() allocates nothing; integers only, so CPython and
MicroPython agree bit for bit; a pulse is reported <= ~0.9 s after its peak
(end of its block + 300 ms contest). Non-guarantees: no motion rejection
here (see spo2.py gating and sqi); dicrotic notches in very slow,
high-amplitude pulses may split a block.
"""
from micropython import const

from dsp import median8, pow2, zeros, zeros16

_NB = const(8)
_NPEAKS = const(32)
_MAX = const(131071)


class PulseDetector:
    def __init__(self, fs, invert=False, weak_div=10):
        if not 50 <= fs <= 250:
            raise ValueError("PPG detector: sample rate %r outside 50-250 sps" % (fs,))
        self.fs = fs
        self.invert = invert
        self.weak_div = weak_div
        self.n1 = max(2, fs // 16)  # low-pass boxcar (~60 ms, zero near 16 Hz)
        self.n2 = max(3, (fs * 3) // 4) | 1  # baseline window (odd: centred)
        self.w1 = max(2, (fs * 111 + 500) // 1000)
        self.w2 = max(3, (fs * 667 + 500) // 1000)
        self.half = self.n2 >> 1
        self.min_gap = (fs * 3) // 10
        # history: the baseline window, the foot search and the SpO2 beat
        # window look back up to ~1.5 s
        self.ring = pow2((fs * 3) // 2)
        self.m = self.ring - 1
        self.mx = pow2(self.n1 + 1) - 1  # the input boxcar's own history
        self.mw = pow2(self.w2 + 1) - 1  # the rectified band-pass: the 667 ms mean
        self.xr = zeros(self.mx + 1)  # input
        # the low-passed signal, kept as 16-bit words: the boxcar sum
        # shifted down by ysh bits (the AC/DC ratios do not change)
        self.ysh = max(0, _bits(self.n1 * _MAX) - 15)
        self.yr = zeros16(self.ring)
        self.ur = zeros16(self.mw + 1)  # rectified band-pass (<= the 16-bit low-pass)
        self.ibis = zeros(_NB)
        self.amps = zeros(_NB)
        self.pis = zeros(_NB)
        self.tmp = zeros(_NB)
        self.peaks = zeros(_NPEAKS)
        self.troughs = zeros(_NPEAKS)
        self.reset()

    def reset(self):
        self.n = 0
        self.s1 = self.s2 = self.sp = self.sb = 0
        self.mean_u = 0
        self.blk = 0  # samples in the current block
        self.bmax = self.bpos = 0
        self.pend = self.pend_v = self.pend_at = 0  # pulse held for the contest
        self.count = 0
        self.last = -1
        self.ii = 0
        self.nibi = 0
        self.hr_x10 = 0
        self.sqi = 0
        self.pi_x100 = 0
        self.amp = 0
        self.ibi_med = 0
        self.weak = 0  # weak pulses found in gaps

    def peak(self, i):
        return self.peaks[i % _NPEAKS]

    def trough(self, i):
        """Foot (lowest low-passed sample) before pulse i."""
        return self.troughs[i % _NPEAKS]

    def light(self, i):
        """Low-passed input sample i the way the sensor gave it (x n1)."""
        v = self.yr[i & self.m]
        return ((self.n1 * _MAX) >> self.ysh) - v if self.invert else v

    def feed(self, buf, mask, start, end):
        inv = self.invert
        if self.n == 0 and end > start:
            x = buf[start & mask]
            self._prime(_MAX - x if inv else x)
        xr = self.xr
        yr = self.yr
        ur = self.ur
        n1 = self.n1
        n2 = self.n2
        w1 = self.w1
        w2 = self.w2
        half = self.half
        n = self.n
        s1 = self.s1
        s2 = self.s2
        sp = self.sp
        sb = self.sb
        mu = self.mean_u
        blk = self.blk
        bmax = self.bmax
        bpos = self.bpos
        m = self.m
        mx = self.mx
        mw = self.mw
        ysh = self.ysh
        for i in range(start, end):
            x = buf[i & mask]
            if x > _MAX:
                x = _MAX
            elif x < 0:
                x = 0
            if inv:
                x = _MAX - x
            j = n & m
            xr[n & mx] = x
            s1 += x - xr[(n - n1) & mx]
            y = s1 >> ysh
            s2 += y - yr[(n - n2) & m]
            yr[j] = y
            # band-pass at the centre of the baseline window
            c = n - half
            bp = yr[c & m] - s2 // n2
            u = bp if bp > 0 else 0
            ur[n & mw] = u
            sp += u - ur[(n - w1) & mw]
            sb += u - ur[(n - w2) & mw]
            mu += (u - mu) >> 9  # long-run mean of u (~4 s at 125 sps)
            n += 1
            if sp // w1 > sb // w2 + (mu >> 6):
                if blk == 0 or bp > bmax:
                    bmax = bp
                    bpos = c
                blk += 1
            elif blk:
                if blk >= w1:
                    self.n = n
                    self._pulse(bpos, bmax)
                blk = 0
            if self.pend and n - self.pend_at > self.min_gap:
                self.n = n
                self._emit()
        self.n = n
        self.s1 = s1
        self.s2 = s2
        self.sp = sp
        self.sb = sb
        self.mean_u = mu
        self.blk = blk
        self.bmax = bmax
        self.bpos = bpos

    def _prime(self, x):
        x = max(0, min(_MAX, x))
        for i in range(self.mx + 1):
            self.xr[i] = x
        for i in range(self.ring):
            self.yr[i] = (x * self.n1) >> self.ysh
        self.s1 = x * self.n1
        self.s2 = ((x * self.n1) >> self.ysh) * self.n2

    # -- per pulse --------------------------------------------------------

    def _pulse(self, pos, v):
        if pos < 0:
            return  # a bump of the primed history before the first sample
        if self.pend:
            if pos - self.pend < self.min_gap:
                if v > self.pend_v:
                    self.pend = pos
                    self.pend_v = v
                    self.pend_at = self.n
                return
            self._emit()
        self.pend = pos
        self.pend_v = v
        self.pend_at = self.n

    def _emit(self):
        pos = self.pend
        self.pend = 0
        med = self.ibi_med
        if med and self.last >= 0 and 2 * (pos - self.last) > 3 * med:
            q = self._weak(self.last, pos, med)
            if q >= 0:
                self.weak += 1
                self._add(q)
        self._add(pos)

    def _weak(self, last, pos, med):
        """A weak pulse in a gap over 1.5 median IBI (an ectopic beat's
        small ejection): the local maximum of the low-passed signal 0.4 IBI
        after the last pulse (past its dicrotic wave) to 0.3 IBI before the
        next that rises most over the ~111 ms before it,
        if it rises at least 1/WEAK of the median pulse amplitude; else -1."""
        yr = self.yr
        m = self.m
        w = self.w1
        edge = (med * 3) // 10
        if edge < self.min_gap:
            edge = self.min_gap
        a = last + (med * 2) // 5  # past the dicrotic wave
        if a < last + edge:
            a = last + edge
        oldest = self.n - self.ring + w + 1
        if a < oldest:
            a = oldest
        b = pos - edge
        best = -1
        rise = 0
        for i in range(a, b):
            v = yr[i & m]
            if v >= yr[(i - 1) & m] and v > yr[(i + 1) & m]:
                lo = v
                for j in range(i - w, i):
                    if yr[j & m] < lo:
                        lo = yr[j & m]
                if v - lo > rise:
                    rise = v - lo
                    best = i
        if best >= 0 and rise * self.weak_div >= self.amp:
            return best
        return -1

    def _add(self, pos):
        # the foot: lowest low-passed sample in the 2/3 s before the peak
        # (or since the previous peak)
        yr = self.yr
        m = self.m
        a = pos - self.w2
        if self.last >= 0 and a <= self.last:
            a = self.last + 1
        lo = yr[pos & m]
        foot = pos
        for i in range(a, pos):
            v = yr[i & m]
            if v < lo:
                lo = v
                foot = i
        top = yr[pos & m]
        for i in range(pos, pos + (self.w1 >> 1)):
            if i < self.n and yr[i & m] > top:
                top = yr[i & m]
        amp = top - lo
        k = self.count % _NPEAKS
        self.peaks[k] = pos
        self.troughs[k] = foot
        self.count += 1
        ii = self.ii
        self.amps[ii] = amp
        dc = ((self.n1 * _MAX) >> self.ysh) - lo if self.invert else top  # light at the foot
        self.pis[ii] = (amp * 10000) // dc if dc > 0 else 0
        if self.last >= 0:
            self.ibis[ii] = pos - self.last
            if self.nibi < _NB:
                self.nibi += 1
        self.last = pos
        self.ii = (ii + 1) & (_NB - 1)
        self._stats()

    def _stats(self):
        if self.nibi < _NB:
            return  # 8 intervals before any figure
        ibi = median8(self.ibis, self.tmp)
        amp = median8(self.amps, self.tmp)
        self.amp = amp
        self.ibi_med = ibi
        self.hr_x10 = (600 * self.fs + (ibi >> 1)) // ibi if ibi else 0
        self.pi_x100 = median8(self.pis, self.tmp)
        good = 0
        for i in range(_NB):
            a = self.amps[i]
            d = self.ibis[i] - ibi
            if d < 0:
                d = -d
            if 2 * a >= amp and a <= 2 * amp and 4 * d <= ibi:
                good += 1
        self.sqi = (good * 100) >> 3


def _bits(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n
