"""What `make sim` concludes from a run: beat detection scored against the
record's reference annotations (AAMI EC57: +-150 ms, one to one, from the
beats the node sent and the gateway verified), the per-node figures, the
FHIR bundle and the PNG (a waveform window and the HR/SpO2 trend).

Time base: the simulated sensor restarts its recordings from the top
whenever it is configured (once per boot); the harness reports each start
(SIM-RECSTART, virtual ms). A frame belongs to the last start before it
(its header carries the node's ticks_ms), and its beats are in ms since
the detector's first sample, which is the recording's first sample.
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


def score(rows, starts, end_ms, record):
    """EC57 figures of the beats a node sent, against MIT-BIH `record`."""
    ref, vf = records.wfdb_reference(data_dir() / "mitdb", record)
    fs = 360
    ref_ms = [s * 1000 // fs for s in ref]
    vf_ms = [(a * 1000 // fs, b * 1000 // fs) for a, b in vf]
    total = [0, 0, 0]
    n_ref = n_det = 0
    for covered, beats in _segments(rows, starts, end_ms):
        r = [t for t in ref_ms if t <= covered]
        d = [t for t in beats if t <= covered]
        tp, fn, fp = scoring.score_record(r, d, 1000, vf_ms)
        total = [total[0] + tp, total[1] + fn, total[2] + fp]
        n_ref += len(r)
        n_det += len(d)
    tp, fn, fp = total
    return {"beats_reference": n_ref, "beats_detected": n_det, "tp": tp, "fn": fn, "fp": fp,
            "se": round(100.0 * tp / (tp + fn), 2) if tp + fn else None,
            "ppv": round(100.0 * tp / (tp + fp), 2) if tp + fp else None}


def vitals_gap(rows):
    """The longest stretch (s) between stored vitals frames, by the node's
    own clock (ticks_ms, which the simulation never wraps); None for fewer
    than two."""
    t = sorted(r["ms"] for r in rows if r["kind"] == "vitals")
    return max(((b - a) / 1000.0 for a, b in zip(t, t[1:])), default=None)


def fhir_bundle(gw_rows, path):
    """Write the FHIR R4 transaction bundle of every stored vitals frame."""
    from tools.gateway import fhir
    bundle = fhir.to_bundle([r for r in gw_rows if r["kind"] == "vitals"])
    path.write_text(json.dumps(bundle, indent=1))
    return len(bundle.get("entry", []))


def plot(path, dev, rows, starts, spec, peaks, title, fifo=None):
    """PNG: the last seconds of the run (ECG with the node's QRS marks, PPG
    with its pulse peaks), the HR/SpO2 trend with alert events (a value the
    node did not vouch for: a grey cross, not a point of the line) and the
    quality the node sent with each frame (HR / SpO2 quality, pulse SQI,
    its VF / AF / asystole judgement shaded). fifo: {"fill_max": n,
    "fill_max_ms": t, "lost_ms": t or None}: where the sensor's FIFO came
    closest to full (and where it first lost a sample) is marked on the
    trend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(4, 1, figsize=(11, 10.5), gridspec_kw={"height_ratios": [1, 1, 1.2, 0.9]})
    qrs_ms = peaks.get("qrs_ms", [])
    ppg_ms = peaks.get("ppg_ms", [])
    t_end = max(qrs_ms + ppg_ms) if qrs_ms or ppg_ms else 10000
    t0 = max(0, t_end - 8000)
    # the MAX30102 has no ECG: the panel says so rather than show another patient's
    ecg = spec.get("ecg") if spec and spec.get("chip") != "max30102" else None
    if ecg:
        import wfdb
        # the simulated sensor replays the record from its top again once it
        # ends: a long run's last seconds lie in its n-th pass
        n = wfdb.rdheader(ecg).sig_len
        s0, s1 = t0 * 360 // 1000, (t_end + 500) * 360 // 1000
        shift = (s0 // n) * n
        s1 = min(s1 - shift, n)
        r = wfdb.rdrecord(ecg, channels=[0], sampfrom=s0 - shift, sampto=s1)
        x = [(s0 + i) / 360.0 for i in range(len(r.p_signal))]
        ax[0].plot(x, r.p_signal[:, 0], lw=0.8, color="tab:blue")
        ax[0].set_ylabel("ECG (mV)")
        for t in qrs_ms:
            if t >= t0:
                ax[0].axvline(t / 1000.0, color="tab:red", lw=0.8, alpha=0.7)
    ax[0].set_title("%s - ECG with the node's QRS detections (red)" % title if ecg else
                    "%s - no ECG (the MAX30102 senses PPG only)" % title)
    if not ecg:
        ax[0].axis("off")
    pleth = spec.get("pleth_i16") if spec else None
    if pleth:
        from array import array
        a = array("h")
        with open(pleth, "rb") as f:
            a.frombytes(f.read())
        i0, i1 = t0 * 125 // 1000, (t_end + 500) * 125 // 1000
        shift = (i0 // len(a)) * len(a) if a else 0  # replayed from the top (as the ECG)
        i1 = min(i1, shift + len(a))
        ax[1].plot([i / 125.0 for i in range(i0, i1)], a[i0 - shift:i1 - shift], lw=0.8,
                   color="tab:green")
        for t in ppg_ms:
            if t >= t0:
                ax[1].axvline(t / 1000.0, color="tab:purple", lw=0.8, alpha=0.7)
    ax[1].set_title("PPG (BIDMC pleth fed to the chip) with the node's pulse peaks (purple)")
    ax[1].set_xlabel("recording time (s)")
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
    ax[2].set_title("Trend from the gateway's verified frames of %s (alerts: orange raised, "
                    "grey cleared; dotted: boots%s)" % (dev, fifo_note))
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
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
