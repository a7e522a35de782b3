"""Our noise stress test: MIT-BIH records with calibrated, synthetic noise
(`python -m tools.bench noise`), scored like an NSTDB run.

Noise (seeded per record, the same realisation at every SNR, only scaled):
  baseline wander  a few sinusoids of 0.05-0.4 Hz plus a random walk
                   low-passed at 0.5 Hz (breathing, posture);
  muscle (EMG)     Gaussian noise band-passed to 20-100 Hz, its amplitude
                   swelling and fading at 0.1-1 Hz;
  electrode motion bursts of 2-15 s (every 5-25 s): band-limited 1-15 Hz
                   noise, baseline jumps decaying in 0.1-1 s and sharp
                   biphasic transients 40-250 ms wide - the kind that
                   mimics a QRS complex.
  mix              motion : muscle : wander = 1 : 0.5 : 0.5 in RMS.
Protocol (as nst's standard one): the first 5 minutes clean (learning),
then noise for 2 minutes, clean for 2 minutes, alternately; the noise
fades in and out over 1 s.
SNR as NSTDB defines it (nst(1)): S = (QRS peak-to-peak amplitude)^2 / 8,
the amplitude being the mean of the middle 90 % of the ranges within
+-50 ms of the first 300 normal beats; N = the square of the mean of the
middle 90 % of the RMS values (about each second's mean) of the first 300
one-second chunks of the noise; gain a with SNR = 10 log10(S / (a^2 N)).
Scoring: EC57 matching of the published beats against the reference from
5:00 to the end (noisy and clean stretches, as NSTDB records are scored).
"""
import math

import numpy as np

SNRS = (24, 18, 12, 6, 0, -6)
LEARN_S = 300
ON_S = OFF_S = 120
FADE_S = 1.0


def record_name(rec, snr):
    """NSTDB-style name: 118e24 ... 118e00, 118e_6."""
    return "%se%s" % (rec, ("%02d" % snr) if snr >= 0 else "_%d" % -snr)


def _seed(rec):
    return sum((i + 1) * ord(c) for i, c in enumerate(str(rec))) * 7919 + 12345


def _bandpass(x, fs, lo, hi):
    f = np.fft.rfftfreq(len(x), 1.0 / fs)
    X = np.fft.rfft(x)
    X[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(X, len(x))


def _lowpass(x, fs, hi):
    return _bandpass(x, fs, 0.0, hi)


def make_noise(rec, n, fs):
    """The unscaled noise for record `rec`, n samples (float64)."""
    rng = np.random.default_rng(_seed(rec))
    t = np.arange(n) / fs
    # baseline wander
    bw = np.zeros(n)
    for _ in range(3):
        bw += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t + rng.uniform(0, 6.3))
    walk = _lowpass(np.cumsum(rng.standard_normal(n)), fs, 0.5)
    bw += walk / (np.std(walk) + 1e-12)
    # muscle: band-limited Gaussian noise with a slowly varying envelope
    ma = _bandpass(rng.standard_normal(n), fs, 20.0, 100.0)
    env = _lowpass(rng.standard_normal(n), fs, 1.0)
    env = 0.4 + np.abs(env) / (np.std(env) + 1e-12)
    ma *= env
    # electrode motion in bursts
    em = np.zeros(n)
    burst = np.zeros(n)
    pos = int(rng.uniform(0, 10) * fs)
    while pos < n:
        length = int(rng.uniform(2, 15) * fs)
        burst[pos:pos + length] = 1.0
        pos += length + int(rng.uniform(5, 25) * fs)
    burst = np.convolve(burst, np.hanning(int(0.5 * fs)) / (0.25 * fs), "same")
    em += _bandpass(rng.standard_normal(n), fs, 1.0, 15.0) * 1.5
    events = np.flatnonzero(rng.random(n) < 1.5 / fs)  # ~1.5 per second
    for k in events:
        amp = rng.lognormal(0, 0.6) * (1 if rng.random() < 0.5 else -1)
        if rng.random() < 0.5:  # baseline jump, decaying
            tau = rng.uniform(0.1, 1.0) * fs
            m = int(min(n - k, 5 * tau))
            em[k:k + m] += 3 * amp * np.exp(-np.arange(m) / tau)
        else:  # sharp biphasic transient
            w = int(rng.uniform(0.04, 0.25) * fs) | 1
            m = min(n - k, w)
            em[k:k + m] += 4 * amp * np.sin(np.linspace(0, 2 * np.pi, w))[:m]
    em *= burst
    rms = lambda v: math.sqrt(float(np.mean(v * v))) or 1.0  # noqa: E731
    return em / rms(em) + 0.5 * ma / rms(ma) + 0.5 * bw / rms(bw)


def gate(n, fs):
    """1 where the protocol adds noise (after the 5-minute learning
    period, 2 min on / 2 min off), with 1 s fades."""
    g = np.zeros(n)
    s = LEARN_S * fs
    while s < n:
        g[s:s + ON_S * fs] = 1.0
        s += (ON_S + OFF_S) * fs
    k = int(FADE_S * fs)
    return np.convolve(g, np.ones(k) / k, "same")


def _trimmed_mean(v):
    v = np.sort(np.asarray(v, float))
    k = int(len(v) * 0.05)
    return float(np.mean(v[k:len(v) - k])) if len(v) > 2 * k else float(np.mean(v))


def signal_power(x, fs, beats, symbols):
    """S: (mean of the middle 90 % of the first 300 normal QRS peak-to-peak
    ranges within +-50 ms)^2 / 8."""
    w = int(round(0.05 * fs))
    pp = []
    for b, c in zip(beats, symbols):
        if c == "N" and w <= b < len(x) - w:
            seg = x[b - w:b + w + 1]
            pp.append(float(np.max(seg) - np.min(seg)))
            if len(pp) == 300:
                break
    if not pp:  # no normal beats: every beat
        pp = [float(np.ptp(x[b - w:b + w + 1])) for b in beats[:300] if w <= b < len(x) - w]
    return _trimmed_mean(pp) ** 2 / 8.0


def noise_power(noise, fs):
    """N: (mean of the middle 90 % of the RMS about the mean of the first
    300 one-second chunks)^2."""
    r = []
    for i in range(min(300, len(noise) // fs)):
        c = noise[i * fs:(i + 1) * fs]
        r.append(float(np.sqrt(np.mean((c - np.mean(c)) ** 2))))
    return _trimmed_mean(r) ** 2


def noisy_record(x, fs, rec, beats, symbols, snrs=SNRS):
    """{snr: array of int samples} for the clean record x (5 uV units)."""
    xf = np.asarray(x, float)
    nz = make_noise(rec, len(xf), fs)
    S = signal_power(xf, fs, beats, symbols)
    N = noise_power(nz, fs)
    g = gate(len(xf), fs) * nz
    out = {}
    for snr in snrs:
        a = math.sqrt(S / (N * 10 ** (snr / 10.0)))
        out[snr] = np.round(xf + a * g).astype(np.int64)
    return out


def write_wfdb(folder, rec, snr, samples, fs, ref_ann):
    """The noisy record as WFDB (format 16, 200 adu/mV, like MIT-BIH) with
    the clean record's reference annotations."""
    import wfdb
    name = record_name(rec, snr)
    s = np.clip(samples, -32767, 32767).astype(np.int16).reshape(-1, 1)
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["ECG"], d_signal=s, fmt=["16"], adc_gain=[200.0],
                baseline=[0], write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(ref_ann.sample), np.asarray(ref_ann.symbol),
               aux_note=list(ref_ann.aux_note), write_dir=str(folder))
    return name
