"""What `make sim` concludes from a run: beat detection scored against the
record's reference annotations (AAMI EC57: +-150 ms, one to one, from the
beats the node sent and the gateway verified), the per-node figures, the
FHIR bundle and the PNG (a waveform window and the HR/SpO2 trend).

Time base: the simulated sensor restarts its recordings from the top
whenever it is configured (once per boot); the harness reports each start
(SIM-RECSTART, virtual ms). A frame belongs to the last start before it
(its header carries the node's ticks_ms), and its beats are in ms since
the detector's first sample, which is the recording's first sample. A
recording that ends before the next start plays again from its top
(tools/shims/waveforms.py; MIT-BIH 100 every 1805.6 s, BIDMC 01 every
480 s): the reference beats and the plotted waveforms follow that loop.
"""
import json

from tools.bench import records, scoring
from tools.paths import data_dir

# beats this close to a boot's last frame may not be sent yet: a wide or noisy
# beat waits lib/rhythm.HOLD_BLOCKS (9 x 0.5 s) of VF analysis before it goes out
_TAIL_MS = 6000


def _segments(rows, starts, end_ms):
    """[(covered ms, beat ms list)] per sensor start."""
    starts = sorted(starts) or [0]
    segs = []
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else end_ms
        mine = [r for r in rows if s <= r["ms"] < e]
        if not mine:
            continue
        covered = max(r["ms"] for r in mine) - s - _TAIL_MS
        beats = sorted(b[0] for r in mine for b in r["beats"])
        segs.append((covered, beats))
    return segs


def looped(ref, vf, n, fs, until_ms):
    """The reference of a record of `n` samples at `fs` Hz (beat sample
    indices `ref`, VF episodes `vf` as (start, end) samples) as the sensor
    plays it: from the top again each time it ends. Returns (beat ms, VF
    (start ms, end ms)) from the start up to `until_ms`."""
    beats, spans = [], []
    k = 0
    while k * n * 1000 // fs <= until_ms:
        base = k * n
        beats += [(base + s) * 1000 // fs for s in ref if (base + s) * 1000 // fs <= until_ms]
        spans += [((base + a) * 1000 // fs, (base + min(b, n)) * 1000 // fs) for a, b in vf]
        k += 1
    return beats, spans


def score_beats(rows, starts, end_ms, ref, vf, n, fs):
    """EC57 figures (+-150 ms, one to one) of the beats in the vitals
    `rows` against a reference annotated on a record of `n` samples at `fs`
    Hz, per sensor start in `starts`, each following the record's loop."""
    total = [0, 0, 0]
    n_ref = n_det = 0
    for covered, beats in _segments(rows, starts, end_ms):
        r, spans = looped(ref, vf, n, fs, covered)
        d = [t for t in beats if t <= covered]
        tp, fn, fp = scoring.score_record(r, d, 1000, spans)
        total = [total[0] + tp, total[1] + fn, total[2] + fp]
        n_ref += len(r)
        n_det += len(d)
    tp, fn, fp = total
    return {"beats_reference": n_ref, "beats_detected": n_det, "tp": tp, "fn": fn, "fp": fp,
            "se": round(100.0 * tp / (tp + fn), 2) if tp + fn else None,
            "ppv": round(100.0 * tp / (tp + fp), 2) if tp + fp else None}


def score(rows, starts, end_ms, record):
    """EC57 figures of the beats a node sent, against MIT-BIH `record`."""
    import wfdb
    path = data_dir() / "mitdb" / record
    ref, vf = records.wfdb_reference(path.parent, record)
    h = wfdb.rdheader(str(path))
    return score_beats(rows, starts, end_ms, ref, vf, h.sig_len, int(h.fs))


def pieces(i0, i1, n):
    """Samples i0 .. i1-1 of a record of `n` samples played in a loop, as
    [(from, to)] index ranges of the record, in order."""
    out = []
    i = i0
    while i < i1:
        a = i % n
        b = min(n, a + i1 - i)
        out.append((a, b))
        i += b - a
    return out


def vitals_gap(rows):
    """The longest stretch (s) between stored vitals frames, by the node's
    own clock (ticks_ms, which the simulation never wraps); None for fewer
    than two."""
    t = sorted(r["ms"] for r in rows if r["kind"] == "vitals")
    return max(((b - a) / 1000.0 for a, b in zip(t, t[1:])), default=None)


def latencies(rows, epoch):
    """Measurement to storage (issue 20's reports), on the simulated
    world's clock: (alert latencies in ms, one per raised alert; vitals
    latencies in s, one per vitals frame). A frame's `ms` is the node's
    clock when it was made (an alert's frame is made as it is raised), its
    `received_at` the gateway's clock at storing, which follows the node's
    SIM-CLOCK lines (World.wall): each figure is good to about a second.
    For one boot only: the node's ms restarts at a reset."""
    alerts, vitals = [], []
    for r in rows:
        lat_ms = (r["received_at"] - epoch) * 1000.0 - r["ms"]
        if r["kind"] == "alert" and r.get("raised"):
            alerts.append(lat_ms)
        elif r["kind"] == "vitals":
            vitals.append(lat_ms / 1000.0)
    return alerts, vitals


def p95(values):
    """The 95th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, -(-95 * len(v) // 100) - 1)]


def fhir_bundle(store, path):
    """Write the FHIR R4 transaction bundle of every stored vitals frame
    (the gateway's export: Patients, Devices, Observations; checked)."""
    from tools.gateway import fhir
    bundle = fhir.export_bundle(store)
    path.write_text(json.dumps(bundle, indent=1))
    return sum(1 for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Observation")


PLETH_HZ = 125  # BIDMC's rate (tools/sim/runner.pleth_cache keeps it)
_WINDOW_MS = 8000  # the waveform panels: the last 8 s the node judged


def plot(path, dev, rows, starts, spec, peaks, title, fifo=None, current=None):
    """PNG of figure(...): see there."""
    fig = figure(dev, rows, starts, spec, peaks, title, fifo, current)
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt
    plt.close(fig)


def figure(dev, rows, starts, spec, peaks, title, fifo=None, current=None):
    """The last seconds of the run (ECG with the node's QRS marks, PPG
    with its pulse peaks, both in s since the sensor's last start, the
    recordings followed through their loops), the HR/SpO2 trend with alert
    events (a value the node did not vouch for: a grey cross, not a point
    of the line) and the quality the node sent with each frame (HR / SpO2
    quality, pulse SQI, its VF / AF / asystole judgement shaded). fifo:
    {"fill_max": n, "fill_max_ms": t, "lost_ms": t or None}: where the
    sensor's FIFO came closest to full (and where it first lost a sample)
    is marked on the trend. current: {"points": tools.power.model.timeline
    points, "capacity_mah": n}: a fifth panel, the node's supply current
    over the run (current_panel). Every axis names its quantity and unit."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ratios = [1, 1, 1.2, 0.9] + ([0.9] if current is not None else [])
    fig, ax = plt.subplots(len(ratios), 1, figsize=(11, 11 + 2.5 * (len(ratios) - 4)),
                           gridspec_kw={"height_ratios": ratios})
    qrs_ms = peaks.get("qrs_ms", [])
    ppg_ms = peaks.get("ppg_ms", [])
    t_end = max(qrs_ms + ppg_ms) + 500 if qrs_ms or ppg_ms else _WINDOW_MS
    t0 = max(0, t_end - _WINDOW_MS)
    since = "time since the sensor's last start (s)"
    # the MAX30102 has no ECG: the panel says so rather than show another patient's
    ecg = spec.get("ecg") if spec and spec.get("chip") != "max30102" else None
    if ecg:
        import wfdb
        h = wfdb.rdheader(ecg)
        fs, n = int(h.fs), h.sig_len
        s0, s1 = t0 * fs // 1000, t_end * fs // 1000
        y = []
        for a, b in pieces(s0, s1, n):  # a long run's last seconds lie in the record's k-th pass
            y += list(wfdb.rdrecord(ecg, channels=[0], sampfrom=a, sampto=b).p_signal[:, 0])
        ax[0].plot([(s0 + i) / fs for i in range(len(y))], y, lw=0.8, color="tab:blue")
        for t in qrs_ms:
            if t >= t0:
                ax[0].axvline(t / 1000.0, color="tab:red", lw=0.8, alpha=0.7)
        ax[0].set_ylabel("ECG (mV)")
        ax[0].set_xlabel(since + "; the record from %s (pass %d)" % (_mmss(s0 % n / fs), s0 // n + 1))
        ax[0].set_title("%s - ECG with the node's QRS detections (red)" % title)
    else:
        ax[0].set_title("%s - no ECG (the MAX30102 senses PPG only)" % title)
        ax[0].axis("off")
    pleth = spec.get("pleth_i16") if spec else None
    if pleth:
        from array import array
        a = array("h")
        with open(pleth, "rb") as f:
            a.frombytes(f.read())
        i0, i1 = t0 * PLETH_HZ // 1000, t_end * PLETH_HZ // 1000
        y = [v for lo, hi in pieces(i0, i1, len(a)) for v in a[lo:hi]]  # replayed from the top too
        ax[1].plot([(i0 + i) / PLETH_HZ for i in range(len(y))], y, lw=0.8, color="tab:green")
        for t in ppg_ms:
            if t >= t0:
                ax[1].axvline(t / 1000.0, color="tab:purple", lw=0.8, alpha=0.7)
        ax[1].set_xlabel(since + "; the record from %s (pass %d)"
                         % (_mmss(i0 % len(a) / PLETH_HZ), i0 // len(a) + 1))
        ax[1].set_title("PPG (BIDMC pleth fed to the chip) with the node's pulse peaks (purple)")
    else:
        ax[1].set_xlabel(since)
        ax[1].set_title("PPG: the sensor's synthetic pulse (no BIDMC record), the node's pulse peaks (purple)")
        for t in ppg_ms:
            if t >= t0:
                ax[1].axvline(t / 1000.0, color="tab:purple", lw=0.8, alpha=0.7)
    ax[1].set_ylabel("pleth (a.u., 0-1024)")
    for a in ax[:2]:  # hours into a run: whole seconds on the axis, not an offset
        a.set_xlim(t0 / 1000.0, t_end / 1000.0)
        a.ticklabel_format(axis="x", useOffset=False, style="plain")
    vit = [r for r in rows if r["kind"] == "vitals"]
    tt = [r["ms"] / 1000.0 for r in vit]

    def valid(r, what):  # version-1 frames carry no judgement: shown as not vouched for
        return bool(r.get(what + "_valid"))

    hr = [r["hr_x10"] / 10 if r["hr_x10"] else None for r in vit]
    sp = [r["spo2_x10"] / 10 if r["spo2_x10"] > 0 else None for r in vit]
    ax[2].plot(tt, [v if valid(r, "hr") else None for v, r in zip(hr, vit)], ".-", color="tab:red",
               label="HR (/min)")
    ax[2].plot(tt, [v if valid(r, "spo2") else None for v, r in zip(sp, vit)], ".-", color="tab:blue",
               label="SpO2 (%)")
    bad = [(t, v) for t, v, r in zip(tt, hr, vit) if v is not None and not valid(r, "hr")]
    bad += [(t, v) for t, v, r in zip(tt, sp, vit) if v is not None and not valid(r, "spo2")]
    if bad:
        ax[2].plot([b[0] for b in bad], [b[1] for b in bad], "x", color="grey",
                   label="not vouched for (invalid)")
    for r in rows:
        if r["kind"] == "alert":
            ax[2].axvline(r["ms"] / 1000.0, color="orange" if r["raised"] else "grey", lw=1)
    for s in starts:
        ax[2].axvline(s / 1000.0, color="black", ls=":", lw=0.8)
    fifo_note = ""
    if fifo and fifo.get("fill_max_ms") is not None:
        ax[2].axvline(fifo["fill_max_ms"] / 1000.0, color="magenta", ls="--", lw=1.2,
                      label="FIFO fullest: %d of 32" % fifo["fill_max"])
        fifo_note = "; dashed magenta: FIFO fullest"
    if fifo and fifo.get("lost_ms") is not None:
        ax[2].axvline(fifo["lost_ms"] / 1000.0, color="magenta", lw=2.5,
                      label="first sample lost (FIFO overflow)")
    ax[2].set_title("Trend: the gateway's verified frames of %s\n(alerts: orange raised, grey cleared; "
                    "dotted: sensor starts%s)" % (dev, fifo_note), fontsize=10)
    ax[2].set_ylabel("HR (/min), SpO2 (%)")
    ax[2].set_xlabel("simulated time (s)")
    ax[2].legend(loc="lower left", fontsize=8)
    q = ax[3]
    q.plot(tt, [r.get("hr_q") for r in vit], ".-", color="tab:red", lw=0.8, label="HR quality (% clean beats / SQI)")
    q.plot(tt, [r.get("spo2_q") for r in vit], ".-", color="tab:blue", lw=0.8, label="SpO2 quality (% pulses passed)")
    q.plot(tt, [r.get("quality") for r in vit], ":", color="tab:green", lw=0.8, label="pulse SQI")
    for key, color, name in (("vf", "red", "VF"), ("af", "purple", "AF"), ("asystole", "black", "asystole")):
        label = name  # one legend entry per kind that occurred
        for t, r in zip(tt, vit):
            if r.get(key):
                q.axvspan(t - 5, t, color=color, alpha=0.15, lw=0, label=label)
                label = None
    q.set_ylim(-5, 105)
    q.set_ylabel("quality (0-100)")
    q.set_title("Quality the node sent with each frame (shaded: VF red, AF purple, asystole black)")
    q.set_xlabel("simulated time (s)")
    q.legend(loc="lower left", fontsize=8)
    if current is not None:
        current_panel(ax[4], dev, current.get("points"), current.get("capacity_mah", 500),
                      current.get("full", False))
    fig.tight_layout()
    return fig


def current_panel(ax, dev, points, capacity_mah=500, full=False):
    """Supply current of node `dev` against simulated time: one step per
    bin of the power meter's timeline (points: [(start s, length s, mA)],
    tools/power/model.timeline), and the run's average as a dashed line
    (the time-weighted mean of the bins, labelled with what it gives on a
    `capacity_mah` cell). full: the meter's table filled up before the run
    ended (the title says the panel covers the start only). Returns that
    average (None without points)."""
    from tools.power import model
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("supply current (mA)")
    if not points:
        ax.set_title("Supply current of %s: no power timeline from the node" % dev)
        return None
    edges = [p[0] for p in points] + [points[-1][0] + points[-1][1]]
    bin_s = max(p[1] for p in points)
    ax.stairs([p[2] for p in points], edges, baseline=None, color="tab:orange", lw=1,
              label="supply current, mean of each %g s" % bin_s)
    avg = model.mean_ma(points)
    ax.axhline(avg, color="black", ls="--", lw=1,
               label="average %.1f mA: %.1f h on %d mAh" % (avg, capacity_mah / avg, capacity_mah)
               if avg else "average 0 mA")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(p[2] for p in points) * 1.1 or 1)
    ax.set_title("Supply current of %s over %s (energy model, docs/power.md)"
                 % (dev, "the first %g s of the run: the timeline was full" % edges[-1] if full
                     else "the run"), fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    return avg


def _mmss(s):
    return "%d:%02d" % (int(s) // 60, int(s) % 60)
