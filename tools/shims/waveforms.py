"""Waveform sources and the optical model behind the simulated sensor chips.

A source yields one integer per call of next() at the rate given to
start(rate): ECG sources in microvolts, pleth sources as blood-volume
pulse 0..1024 (1024 = most blood, least light). Recorded sources play a
record end to end, looping, and resample it to the chip's rate by integer
linear interpolation, exactly:

    out[k] = x[i] + ((x[i+1] - x[i]) * r) // out_rate,
    i, r = divmod(k * src_rate, out_rate)   (i taken modulo the record length)

so a test can recompute the stream a chip must deliver from the record.

    ecg = waveforms.Mitdb(data_dir + "/mitdb/100", channel=0)   # uV, 360 Hz
    ppg = waveforms.BidmcPleth(data_dir + "/bidmc/bidmc_01_Signals.csv.gz")
    syn = waveforms.Table(waveforms.ecg_beat(72, 500), 500)     # synthetic

Guarantee: next() allocates nothing (file sources refill preallocated
chunks with readinto); every source runs on MicroPython and CPython.
"""
from array import array

P_FULL = 1024  # pleth scale


class Const:
    def __init__(self, value=0):
        self.value = value

    def start(self, rate):
        pass

    def next(self):
        return self.value


class Counter:
    """value, value+step, ... wrapping inside [lo, hi): exact decode tests."""

    def __init__(self, start=0, step=1, lo=-100000, hi=100000):
        self.first = start
        self.v = start
        self.step = step
        self.lo = lo
        self.hi = hi

    def start(self, rate):
        self.v = self.first

    def next(self):
        v = self.v
        n = v + self.step
        if n >= self.hi:
            n = self.lo + (n - self.hi)
        self.v = n
        return v


class _Resampled:
    """Linear-interpolating playback of a looping raw stream."""

    rate = 1

    def start(self, out_rate):
        self.out = out_rate
        self._rewind()
        self.x0 = self._read()
        self.x1 = self._read()
        self.r = 0

    def next(self):
        x0 = self.x0
        v = x0 + ((self.x1 - x0) * self.r) // self.out
        self.r += self.rate
        while self.r >= self.out:
            self.r -= self.out
            self.x0 = self.x1
            self.x1 = self._read()
        return v


class Table(_Resampled):
    """Play an int sequence recorded at `rate` Hz, looping."""

    def __init__(self, values, rate):
        self.values = array("i", values)
        self.rate = rate
        self.i = 0

    def _rewind(self):
        self.i = 0

    def _read(self):
        v = self.values[self.i]
        self.i += 1
        if self.i >= len(self.values):
            self.i = 0
        return v


def _header(base):
    """(rate, nframes, [(gain, baseline)] per signal) from a WFDB .hea."""
    with open(base + ".hea") as f:
        lines = [ln.split() for ln in f.read().split("\n") if ln and not ln.startswith("#")]
    rec = lines[0]
    sigs = []
    for ln in lines[1:1 + int(rec[1])]:
        if ln[1] != "212":
            raise ValueError("%s: format %s, only 212 is supported" % (base, ln[1]))
        g = ln[2].split("/")[0]
        zero = int(ln[4])
        if "(" in g:
            gain, baseline = g.split("(")
            baseline = int(baseline.rstrip(")"))
        else:
            gain, baseline = g, zero
        sigs.append((float(gain), baseline))
    return int(rec[2]), int(rec[3]), sigs


class Mitdb(_Resampled):
    """One channel of a two-signal format-212 WFDB record, in microvolts."""

    def __init__(self, base, channel=0, chunk_frames=256):
        self.rate, self.nframes, sigs = _header(base)
        if len(sigs) != 2:
            raise ValueError("%s: format 212 reader expects 2 signals" % base)
        gain, self.baseline = sigs[channel]
        self.uv_num = int(1000 * 1000 / gain)  # uV per adu x1000
        self.channel = channel
        self.f = open(base + ".dat", "rb")
        self.buf = bytearray(3 * chunk_frames)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.pos = 0
        self.frame = 0

    def _rewind(self):
        self.f.seek(0)
        self.n = self.pos = self.frame = 0

    def _read(self):
        if self.frame >= self.nframes:
            self._rewind()
        if self.pos >= self.n:
            self.n = self.f.readinto(self.mv) or 0
            self.n -= self.n % 3
            self.pos = 0
            if self.n == 0:
                raise ValueError("record shorter than its header says")
        b = self.buf
        p = self.pos
        if self.channel == 0:
            v = b[p] | ((b[p + 1] & 0x0F) << 8)
        else:
            v = b[p + 2] | ((b[p + 1] & 0xF0) << 4)
        if v & 0x800:
            v -= 0x1000
        self.pos = p + 3
        self.frame += 1
        return ((v - self.baseline) * self.uv_num) // 1000


class Int16File(_Resampled):
    """A looping stream of little-endian int16 samples at `rate` Hz - the
    simulator's decoded cache of a compressed record (no inflate window on
    the node's heap)."""

    def __init__(self, path, rate, chunk=512):
        self.rate = rate
        self.f = open(path, "rb")
        self.buf = bytearray(chunk)
        self.mv = memoryview(self.buf)
        self.n = self.pos = 0

    def _rewind(self):
        self.f.seek(0)
        self.n = self.pos = 0

    def _read(self):
        if self.pos >= self.n:
            self.n = self.f.readinto(self.mv) or 0
            self.n -= self.n & 1
            self.pos = 0
            if self.n == 0:
                self._rewind()
                return self._read()
        b = self.buf
        p = self.pos
        v = b[p] | (b[p + 1] << 8)
        self.pos = p + 2
        return v - 0x10000 if v & 0x8000 else v


def _open_gz(path):
    try:
        import deflate  # MicroPython
        return deflate.DeflateIO(open(path, "rb"), deflate.GZIP)
    except ImportError:
        import gzip
        return gzip.open(path, "rb")


class BidmcPleth(_Resampled):
    """PLETH column of a BIDMC *_Signals.csv(.gz) at 125 Hz, scaled from
    its 0..1 range to 0..P_FULL. Parsed in place without allocation."""

    rate = 125

    def __init__(self, path, column=2, chunk=512):
        self.path = path
        self.column = column
        self.buf = bytearray(chunk)
        self.mv = memoryview(self.buf)
        self.f = None

    def _rewind(self):
        if self.f is not None:
            self.f.close()
        self.f = _open_gz(self.path) if self.path.endswith(".gz") else open(self.path, "rb")
        self.n = self.pos = 0
        self.header = True

    def _byte(self):
        if self.pos >= self.n:
            self.n = self.f.readinto(self.mv) or 0
            self.pos = 0
            if self.n == 0:
                return -1
        c = self.buf[self.pos]
        self.pos += 1
        return c

    def _read(self):
        while True:
            col = 0
            whole = frac = scale = 0
            seen = False
            dot = False
            while True:
                c = self._byte()
                if c < 0:
                    self._rewind()
                    break
                if c == 10:
                    break
                if c == 44:
                    col += 1
                elif col == self.column:
                    if 48 <= c <= 57:
                        seen = True
                        if dot:
                            if scale < 100000:
                                frac = frac * 10 + c - 48
                                scale = scale * 10 if scale else 10
                        else:
                            whole = whole * 10 + c - 48
                    elif c == 46:
                        dot = True
            if self.header:
                self.header = False
                continue
            if not seen:
                continue  # blank line or missing value: take the next row
            if not scale:
                scale = 1
            return whole * P_FULL + (frac * P_FULL) // scale


def ecg_beat(hr_bpm, rate, amp_uv=1200):
    """One synthetic PQRST complex (uV) for a heart rate, `rate` Hz."""
    import math
    n = int(rate * 60 / hr_bpm)
    waves = ((0.16, 0.025, 0.12), (0.245, 0.008, -0.12), (0.26, 0.010, 1.0),
             (0.275, 0.008, -0.25), (0.50, 0.045, 0.30))  # (centre s, width s, rel. amp)
    out = []
    for k in range(n):
        t = k / rate
        v = 0.0
        for c, w, a in waves:
            v += a * math.exp(-((t - c) / w) ** 2)
        out.append(int(v * amp_uv))
    return out


def ppg_beat(hr_bpm, rate):
    """One synthetic pulse (0..P_FULL): fast upstroke, dicrotic notch."""
    import math
    n = int(rate * 60 / hr_bpm)
    out = []
    for k in range(n):
        t = k / n
        v = math.exp(-((t - 0.25) / 0.09) ** 2) + 0.45 * math.exp(-((t - 0.55) / 0.12) ** 2)
        out.append(int(v / 1.05 * P_FULL))
    return out


class Optics:
    """LED -> tissue -> photodiode, integer math (no allocation).

    DC photocurrent is LED current times a coupling (pA per uA of LED
    current; IR couples better than red through tissue, which is what the
    sampler's LED-swap self-test relies on). The pulse removes up to the
    perfusion index of the DC. Red's perfusion index is chosen so that the
    ratio of ratios R = (AC/DC)red / (AC/DC)ir gives the chosen SpO2 on the
    calibration line SpO2 = 110 - 25 R (the linear curve of Maxim AN6409 /
    Webster, "Design of Pulse Oximeters"; the detectors use the same line).
    """

    def __init__(self, spo2=97.0, pi_ir_pct=2.0, coupling_ir=250, coupling_red=150):
        self.set_spo2(spo2, pi_ir_pct)
        self.coupling = (0, coupling_ir, coupling_red)  # index: 1 IR, 2 red

    def set_spo2(self, spo2, pi_ir_pct=None):
        if pi_ir_pct is not None:
            self.pi_ir = pi_ir_pct
        self.spo2 = spo2
        ratio = (110.0 - spo2) / 25.0
        # perfusion index in units of 1e-5 (so 2 % = 2000)
        self.pi = (0, int(round(self.pi_ir * 1000)), int(round(self.pi_ir * ratio * 1000)))

    def counts(self, wavelength, led_ua, p, cpn16):
        dc = (led_ua * self.coupling[wavelength] // 1000 * cpn16) >> 4
        ac = (dc >> 3) * self.pi[wavelength] // 12500
        return dc - (ac * p) // P_FULL

    def ambient(self, full):
        return full // 200
