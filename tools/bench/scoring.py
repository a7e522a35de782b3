"""Scoring, host side: AAMI EC57 beat-by-beat QRS matching and PPG HR error.

EC57 as used here: reference beats are the beat-label annotations; a
detection matches a reference beat within +-150 ms, one to one (a detection
nearer the next reference beat is left for it); Se = TP/(TP+FN),
+P = TP/(TP+FP), gross = summed over records. Ventricular flutter episodes
('[' .. ']') are excluded from both sides, as EC57 excludes VF from QRS
detection scoring; `strict=True` scores them too (flutter waves are not beat
labels, so every detection there is a false positive).
"""
import statistics


def match(ref, det, window):
    """(TP, FN, FP) for sorted sample-index lists."""
    tp, fn, fp, _ = match_detail(ref, det, window)
    return tp, fn, fp


def match_detail(ref, det, window):
    """(TP, FN, FP, indices into det of the false detections)."""
    i = j = tp = fn = 0
    false = []
    while i < len(ref) and j < len(det):
        if det[j] < ref[i] - window:
            false.append(j)
            j += 1
        elif det[j] > ref[i] + window:
            fn += 1
            i += 1
        elif j + 1 < len(det) and abs(det[j + 1] - ref[i]) < abs(det[j] - ref[i]):
            false.append(j)  # the next detection fits this beat better
            j += 1
        else:
            tp += 1
            i += 1
            j += 1
    false += range(j, len(det))
    return tp, fn + len(ref) - i, len(false), false


def _outside(points, spans):
    if not spans:
        return list(points)
    return [p for p in points if not any(a <= p <= b for a, b in spans)]


def score_record(ref, det, fs, vf=(), strict=False):
    spans = () if strict else vf
    return match(_outside(ref, spans), _outside(det, spans), int(round(0.150 * fs)))


def gross(rows):
    """rows: [(TP, FN, FP)] -> (Se %, +P %, TP, FN, FP)."""
    tp = sum(r[0] for r in rows)
    fn = sum(r[1] for r in rows)
    fp = sum(r[2] for r in rows)
    se = 100.0 * tp / (tp + fn) if tp + fn else 0.0
    ppv = 100.0 * tp / (tp + fp) if tp + fp else 0.0
    return se, ppv, tp, fn, fp


def beat_hr_errors(peaks, fs, hr_ref, n_samples, win_s=8, step_s=2):
    """|HR from the beat list - monitor HR| per window of win_s seconds every
    step_s, as an independent scorer computes it from OUT/<record>.txt:
    60 / mean interval between the detected peaks inside the window
    ((last - first) / (count - 1)) against the mean of the monitor's 1 Hz
    HR numerics in the window. Windows with under 2 peaks or no reference
    are skipped."""
    errs = []
    t0 = 0
    total_s = n_samples / fs
    while t0 + win_s <= total_s:
        a, b = t0 * fs, (t0 + win_s) * fs
        pk = [p for p in peaks if a <= p < b]
        ref = [v for v in hr_ref[t0:t0 + win_s] if v is not None]
        if len(pk) >= 2 and ref:
            mean = (pk[-1] - pk[0]) / (len(pk) - 1)
            errs.append(abs(60.0 * fs / mean - sum(ref) / len(ref)))
        t0 += step_s
    return errs


def node_hr_errors(node_hr, hr_ref, win_s=8, step_s=2):
    """|the node's published rate at a window's end - mean monitor HR in
    the window| per window (node_hr: one value or None per second)."""
    errs = []
    t0 = 0
    while t0 + win_s <= len(node_hr):
        v = node_hr[t0 + win_s - 1]
        ref = [r for r in hr_ref[t0:t0 + win_s] if r is not None]
        if v is not None and ref:
            errs.append(abs(v - sum(ref) / len(ref)))
        t0 += step_s
    return errs


def hr_errors(peaks, fs, hr_ref, n_samples, win_s=8, step_s=2):
    """|HR estimate - monitor HR| per window of win_s seconds every step_s.
    Estimate: 60 / median inter-beat interval of the detected peaks inside
    the window; reference: mean of the 1 Hz HR numerics in the window.
    Windows with under 2 peaks or no reference are skipped."""
    errs = []
    t0 = 0
    total_s = n_samples / fs
    while t0 + win_s <= total_s:
        a, b = t0 * fs, (t0 + win_s) * fs
        pk = [p for p in peaks if a <= p < b]
        ref = [v for v in hr_ref[t0:t0 + win_s] if v is not None]
        if len(pk) >= 2 and ref:
            ibi = statistics.median(pk[k + 1] - pk[k] for k in range(len(pk) - 1))
            errs.append(abs(60.0 * fs / ibi - sum(ref) / len(ref)))
        t0 += step_s
    return errs


# -- rhythm episodes ---------------------------------------------------------

def _merge(spans):
    out = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def overlap(xs, ys):
    """Samples covered by both span lists."""
    xs, ys = _merge(xs), _merge(ys)
    i = j = tot = 0
    while i < len(xs) and j < len(ys):
        a = max(xs[i][0], ys[j][0])
        b = min(xs[i][1], ys[j][1])
        if b > a:
            tot += b - a
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return tot


def covered(spans):
    return sum(b - a for a, b in _merge(spans))


def duration_scores(ref, det, length):
    """Duration-weighted (TP, FN, FP, TN) in samples of detected spans
    against reference spans over a record of `length` samples."""
    ref = [(max(0, a), min(length, b)) for a, b in ref]
    det = [(max(0, a), min(length, b)) for a, b in det]
    tp = overlap(ref, det)
    r = covered(ref)
    d = covered(det)
    return tp, r - tp, d - tp, length - r - d + tp


def alarm_delays(ref, alarms, limit):
    """For each reference episode (start, end): seconds-free delay in samples
    from its onset to the first alarm raised within [onset, onset + limit]
    (0 if an alarm raised before the onset is still on at it), or None."""
    out = []
    for a, _ in ref:
        best = None
        for s, e in alarms:
            if s <= a < e:
                best = 0
                break
            if a <= s <= a + limit and (best is None or s - a < best):
                best = s - a
        out.append(best)
    return out


def false_alarms(ref, alarms, slack=0):
    """Alarms raised outside every reference episode (its end + slack)."""
    return sum(1 for s, _ in alarms if not any(a <= s <= b + slack for a, b in ref))
