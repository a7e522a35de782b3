"""A published AF detector, run on the node's own beats for comparison
(host only; `tools.bench rhythm` scores it exactly as it scores the node).

Dash S, Chon KH, Lu S, Raeder EA. Automatic real time detection of atrial
fibrillation. Ann Biomed Eng 2009;37:1701-9: over 128 RRs, with the 8
longest and 8 shortest set aside, AF when all three hold -
  RMSSD / mean RR >= 0.1,
  Shannon entropy of the 16-bin RR histogram (normalised by log 16) >= 0.7,
  turning-point ratio (of the whole window) within 0.54 .. 0.77
(their published thresholds; nothing here is tuned on our data). Every RR
of the published beat list counts (the method has no ectopic-beat filter).
The window moves STEP RRs at a time; each decision covers its middle STEP
RRs; the first and last ~56 RRs of a record are never called AF.

Guarantees: deterministic, floats (a host tool). Non-guarantees: our
reading of the paper's windowing (they slide by one beat; STEP RRs change
the figures by well under a percent), the node's beats (misses, VF gaps)
rather than the annotated ones.
"""
import math

WIN = 128
TRIM = 8
BINS = 16
STEP = 16


def dash_features(rr):
    """(RMSSD / mean, normalised Shannon entropy, turning-point ratio) of a
    window of RRs (any unit)."""
    tpr = sum(1 for i in range(1, len(rr) - 1)
              if (rr[i] - rr[i - 1]) * (rr[i + 1] - rr[i]) < 0) / (len(rr) - 2)
    core = sorted(rr)[TRIM:len(rr) - TRIM]
    lo, hi = core[0], core[-1]
    # RMSSD over the window in order, without the trimmed outliers
    keep = [v for v in rr if lo <= v <= hi]
    d = [keep[i + 1] - keep[i] for i in range(len(keep) - 1)]
    mean = sum(keep) / len(keep)
    rmssd = math.sqrt(sum(v * v for v in d) / len(d)) / mean if d and mean else 0.0
    counts = [0] * BINS
    for v in core:
        counts[min(BINS - 1, int((v - lo) * BINS / (hi - lo))) if hi > lo else 0] += 1
    she = -sum(c / len(core) * math.log(c / len(core)) for c in counts if c) / math.log(BINS)
    return rmssd, she, tpr


def dash_af(beats):
    """AF episodes [(start, end)] in samples from R-peak samples `beats`."""
    eps = []
    for s in range(0, len(beats) - WIN, STEP):
        rr = [beats[s + i + 1] - beats[s + i] for i in range(WIN)]
        rmssd, she, tpr = dash_features(rr)
        if rmssd >= 0.1 and she >= 0.7 and 0.54 <= tpr <= 0.77:
            mid = s + WIN // 2
            a, b = beats[mid - STEP // 2], beats[mid + STEP // 2]
            if eps and eps[-1][1] >= a:
                eps[-1] = (eps[-1][0], b)
            else:
                eps.append((a, b))
    return eps
