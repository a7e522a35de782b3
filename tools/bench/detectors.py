"""`python -m tools.bench qrs|ppg`: run the device detector modules (lib/qrs.py,
lib/ppg.py - the code the firmware imports) over a database on CPython,
write one detected index per line to OUT/<record>.txt, and score them.

The detectors are integer-only and give the same output on the MicroPython
VMs (host_tests/host/test_detect_parity.py proves it on full records).
"""
import sys
from multiprocessing import Pool
from pathlib import Path

from tools.bench import afref, records, scoring

CHUNK = 32  # samples per feed() call, as the node feeds a FIFO read


def _device_module(name):
    from tools import hostshims
    hostshims.install()
    return __import__(name)


def _bounds(n, chunks):
    """(start, end) of each feed() call over n samples: sizes from `chunks`
    in turn (default: CHUNK each)."""
    chunks = chunks or [CHUNK]
    s = k = 0
    while s < n:
        e = min(n, s + chunks[k % len(chunks)])
        yield s, e
        s = e
        k += 1


def run_ecg(x, fs, mains=60, shift=0, chunks=None):
    """The node's ECG chain (lib/rhythm.Rhythm over lib/qrs.QRSDetector, and
    lib/alerts.Alerts for asystole, as firmware/detect.py wires them) over a
    whole record, fed in FIFO-sized chunks (`chunks`: the sizes of the
    feed() calls in turn, default CHUNK each): the published beats with their
    flags, the rhythm episodes [(start, end, label)] as the node dates them
    (ASYS: from the alarm to the QRS that ended the pause), the detector's
    raw beat count."""
    qrs = _device_module("qrs")
    rhythm = _device_module("rhythm")
    alerts = _device_module("alerts")
    rh = rhythm.Rhythm(qrs.QRSDetector(fs, mains, shift))
    al = alerts.Alerts()
    asys = 1 << alerts.ASYSTOLE
    beats, flags, eps = [], [], []
    open_ = {}
    kinds = ((rhythm.VF, "VF", "vf_start", "vf_end"), (rhythm.AF, "AFIB", "af_start", "af_end"))
    state = 0
    up = False  # the asystole alert's state at the last chunk

    def drain():
        while len(beats) < rh.count:
            beats.append(rh.beat(len(beats)))
            flags.append(rh.flags(len(beats) - 1))

    for s, e in _bounds(len(x), chunks):
        rh.feed(x, -1, s, e)
        drain()
        if rh.state != state:
            for bit, label, a, b in kinds:
                if rh.state & bit and not state & bit:
                    open_[label] = getattr(rh, a)
                elif state & bit and not rh.state & bit:
                    eps.append((open_.pop(label), getattr(rh, b), label))
            state = rh.state
        last = rh.qrs.last_r
        age = (e - last if last >= 0 else e) * 1000 // fs
        al.update((e * 1000) // fs, 0, -1, age, False, False, False, 0)
        if al.active & asys and not up:  # raised
            open_["ASYS"] = e
            open_["ASYS_LAST"] = last
        up = bool(al.active & asys)
        if "ASYS" in open_ and last != open_["ASYS_LAST"]:
            start = open_.pop("ASYS")
            open_.pop("ASYS_LAST")
            eps.append((start, max(start, last), "ASYS"))
    _flush(rh)
    drain()
    open_.pop("ASYS_LAST", None)
    for label, start in open_.items():
        eps.append((start, len(x), label))
    return {"beats": beats, "flags": flags, "episodes": sorted(eps), "raw": rh.qrs.count,
            "dropped": rh.dropped}


def _flush(rh):
    """End of a recording: publish the beats the node still holds for its
    VF check (as if the analysis had run on past the end; none while VF is
    judged) - the node itself never reaches an end."""
    rhythm = _device_module("rhythm")
    if not rh.state & rhythm.VF:
        lag = rhythm.HOLD_BLOCKS * rh.bn * rh.dk
        rh.vi += lag
        rh._publish()
        rh.vi -= lag


def _write_indices(out, name, indices):
    (Path(out) / (name + ".txt")).write_text("".join("%d\n" % i for i in indices))


def _over_records(one, jobs, db, out, names, *extra):
    """one((db, name, out, *extra)) for each record, in `jobs` processes."""
    Path(out).mkdir(parents=True, exist_ok=True)
    with Pool(max(1, jobs)) as pool:
        return pool.map(one, [(db, n, str(out)) + extra for n in names])


def _qrs_one(job):
    db, name, out, channel = job
    x, fs = records.wfdb_signal(db, name, channel)
    res = run_ecg(x, fs)
    det = res["beats"]
    _write_indices(out, name, det)
    if not records.has_annotations(db, name):
        return name, None, None, len(x) / fs, len(det)
    ref, vf = records.wfdb_reference(db, name)
    return (name, scoring.score_record(ref, det, fs, vf),
            scoring.score_record(ref, det, fs, vf, strict=True), len(x) / fs, len(det))


def _check_records(db, names):
    names = names or records.wfdb_records(db)
    if not names:
        raise SystemExit("no WFDB records (*.hea) in %s" % db)
    missing = [n for n in names if not (Path(db) / (n + ".hea")).exists()]
    if missing:
        raise SystemExit("no such WFDB record in %s: %s" % (db, ", ".join(missing)))
    return names


def _subset(rows, subset):
    return [r for r in rows if subset is None or r[0] in subset]


def run_qrs(db, out, names=None, channel=0, jobs=2):
    """Detect and score; returns the figures as a dict."""
    names = _check_records(db, names)
    try:
        rows = _over_records(_qrs_one, jobs, db, out, names, channel)
    except records.RecordError as e:
        raise SystemExit("qrs: %s" % e)
    print("%-8s %7s %5s %5s %8s %8s" % ("record", "TP", "FN", "FP", "Se%", "+P%"))
    for name, sc, _, _, nd in rows:
        if sc is None:
            print("%-8s %d beats (no reference annotations: not scored)" % (name, nd))
            continue
        tp, fn, fp = sc
        se, ppv = scoring.gross([(tp, fn, fp)])[:2]
        print("%-8s %7d %5d %5d %8.2f %8.2f" % (name, tp, fn, fp, se, ppv))
    rows = [r for r in rows if r[1] is not None]
    res = {}
    for label, subset in (("all", None), ("ds1", records.DS1_NAMES), ("ds2", records.DS2_NAMES)):
        sel = _subset(rows, subset)
        if not sel:
            continue
        se, ppv, tp, fn, fp = scoring.gross([r[1] for r in sel])
        sse, sppv, stp, sfn, sfp = scoring.gross([r[2] for r in sel])
        worst_se = min(sel, key=lambda r: scoring.gross([r[1]])[0])
        worst_p = min(sel, key=lambda r: scoring.gross([r[1]])[1])
        res[label] = {"records": len(sel), "se": se, "ppv": ppv, "tp": tp, "fn": fn, "fp": fp,
                      "se_strict": sse, "ppv_strict": sppv, "fp_strict": sfp, "fn_strict": sfn,
                      "worst_se": (worst_se[0], scoring.gross([worst_se[1]])[0]),
                      "worst_ppv": (worst_p[0], scoring.gross([worst_p[1]])[1])}
        print("%-4s %2d records: Se %.3f %%  +P %.3f %%  (TP %d FN %d FP %d); worst Se %s %.2f %%, "
              "worst +P %s %.2f %%; VF episodes scored too (strict): Se %.3f %% +P %.3f %% (FN %d FP %d)"
              % (label.upper(), len(sel), se, ppv, tp, fn, fp, worst_se[0], res[label]["worst_se"][1],
                 worst_p[0], res[label]["worst_ppv"][1], sse, sppv, sfn, sfp))
    print("signal: %.0f s; published beats in %s/<record>.txt (sample index at the record's rate)"
          % (sum(r[3] for r in rows), out))
    return res


VF_LABELS = ("VFL", "VF")
ASYS_GAP_S = 4  # a pause this long between reference beats is an asystole


def _rhythm_one(job):
    db, name, out, channel = job
    x, fs = records.wfdb_signal(db, name, channel)
    res = run_ecg(x, fs)
    eps = res["episodes"]
    (Path(out) / (name + ".txt")).write_text("".join("%d %d %s\n" % e for e in eps))
    row = {"name": name, "fs": fs, "n": len(x), "episodes": eps, "scored": False,
           "dash": afref.dash_af(res["beats"])}
    if not records.has_annotations(db, name):
        return row
    rh = records.wfdb_rhythms(db, name, len(x))
    beats, vf = records.wfdb_reference(db, name)
    gap = ASYS_GAP_S * fs
    row.update(scored=True,
               af_ref=[(a, b) for a, b, lab in rh if lab == "AFIB"],
               vf_ref=[(a, b) for a, b, lab in rh if lab in VF_LABELS],
               asys_ref=[(beats[i], beats[i + 1]) for i in range(len(beats) - 1)
                         if beats[i + 1] - beats[i] >= gap and not any(
                             a < beats[i + 1] and beats[i] < b for a, b in vf)])
    return row


def run_rhythm(db, out, names=None, channel=0, jobs=2):
    """Episodes of the node's rhythm analysis -> OUT/<record>.txt, scored
    against the rhythm annotations where the record has them."""
    names = _check_records(db, names)
    try:
        rows = _over_records(_rhythm_one, jobs, db, out, names, channel)
    except records.RecordError as e:
        raise SystemExit("rhythm: %s" % e)
    print("%-8s %9s %9s %9s %9s  %s" % ("record", "AF ref s", "AF det s", "AF TP s", "AF FP s",
                                       "VF / ASYS"))
    res = {"records": len(rows)}
    for label, subset in (("all", None), ("ds1", records.DS1_NAMES), ("ds2", records.DS2_NAMES)):
        sel = [r for r in rows if r["scored"] and (subset is None or r["name"] in subset)]
        if not sel:
            continue
        tot = [0, 0, 0, 0]
        dash = [0, 0, 0, 0]
        for r in sel:
            det = [(a, b) for a, b, lab in r["episodes"] if lab == "AFIB"]
            sc = scoring.duration_scores(r["af_ref"], det, r["n"])
            tot = [t + v / r["fs"] for t, v in zip(tot, sc)]
            ds = scoring.duration_scores(r["af_ref"], r["dash"], r["n"])
            dash = [t + v / r["fs"] for t, v in zip(dash, ds)]
            if label == "all":
                vf = [e for e in r["episodes"] if e[2] == "VF"]
                asys = [e for e in r["episodes"] if e[2] == "ASYS"]
                print("%-8s %9.0f %9.0f %9.0f %9.0f  VF %d, ASYS %d" % (
                    r["name"], (sc[0] + sc[1]) / r["fs"], (sc[0] + sc[2]) / r["fs"], sc[0] / r["fs"],
                    sc[2] / r["fs"], len(vf), len(asys)))
        tp, fn, fp, tn = tot
        res[label] = {"records": len(sel), "af_se": 100.0 * tp / (tp + fn) if tp + fn else None,
                      "af_sp": 100.0 * tn / (tn + fp) if tn + fp else None,
                      "af_s": tp + fn, "af_fp_s": fp, "af_fn_s": fn,
                      "dash_se": 100.0 * dash[0] / (dash[0] + dash[1]) if dash[0] + dash[1] else None,
                      "dash_sp": 100.0 * dash[3] / (dash[3] + dash[2]) if dash[3] + dash[2] else None}
    sel = [r for r in rows if r["scored"]]
    if sel:
        _vf_summary(sel, res)
        for label in ("all", "ds1", "ds2"):
            if label in res:
                r = res[label]
                se = "%.2f %%" % r["af_se"] if r["af_se"] is not None else "n/a (no AF)"
                print("AF %-3s %2d records: Se %s, Sp %.2f %% (duration-weighted; AF %.0f s, missed %.0f s, "
                      "false %.0f s)" % (label.upper(), r["records"], se, r["af_sp"], r["af_s"],
                                        r["af_fn_s"], r["af_fp_s"]))
        for label in ("all", "ds1", "ds2"):
            if label in res:
                r = res[label]
                se = "%.2f %%" % r["dash_se"] if r["dash_se"] is not None else "n/a (no AF)"
                print("AF %-3s, Dash et al. 2009 on the same beats (published thresholds, for comparison): "
                      "Se %s, Sp %.2f %%" % (label.upper(), se, r["dash_sp"]))
    print("episodes in %s/<record>.txt: start_sample end_sample LABEL (AFIB, VF, ASYS)" % out)
    return res


def _vf_summary(rows, res):
    delays, false, false_vf_free, hours, hours_vf_free = [], 0, 0, 0.0, 0.0
    asys_hit = asys_ref = asys_false = 0
    for r in rows:
        fs = r["fs"]
        alarms = [(a, b) for a, b, lab in r["episodes"] if lab == "VF"]
        for (a, b), d in zip(r["vf_ref"], scoring.alarm_delays(r["vf_ref"], alarms, 10 * fs)):
            delays.append((r["name"], a, (b - a) / fs, None if d is None else d / fs))
        nf = scoring.false_alarms(r["vf_ref"], alarms)
        vf_s = scoring.covered(r["vf_ref"]) / fs
        false += nf
        hours += (r["n"] / fs - vf_s) / 3600.0
        if not r["vf_ref"]:
            false_vf_free += nf
            hours_vf_free += r["n"] / fs / 3600.0
        asys = [(a, b) for a, b, lab in r["episodes"] if lab == "ASYS"]
        asys_ref += len(r["asys_ref"])
        asys_hit += sum(1 for a, b in r["asys_ref"] if any(a <= s <= b for s, _ in asys))
        asys_false += scoring.false_alarms(r["asys_ref"], asys)
    hit = [d for d in delays if d[3] is not None]
    print("VF/VFL episodes (rhythm annotations (VFL, (VF): %d, alarmed within 10 s: %d" % (len(delays), len(hit)))
    for name, a, dur, d in delays:
        print("  %s onset sample %d, %.1f s long: %s" % (
            name, a, dur, "alarm after %.1f s" % d if d is not None else "NOT alarmed within 10 s"))
    per24 = false * 24.0 / hours if hours else 0.0
    per24_free = false_vf_free * 24.0 / hours_vf_free if hours_vf_free else 0.0
    print("false VF alarms: %d in %.1f h outside VF episodes (%.2f per 24 h); %d in the %.1f h of records "
          "without VF (%.2f per 24 h)" % (false, hours, per24, false_vf_free, hours_vf_free, per24_free))
    print("asystole (reference beats >= %d s apart): %d pauses, %d alarmed, %d false ASYS alarms"
          % (ASYS_GAP_S, asys_ref, asys_hit, asys_false))
    res["vf"] = {"episodes": len(delays), "detected": len(hit),
                 "max_delay_s": max((d[3] for d in hit), default=None),
                 "false_alarms": false, "false_per_24h": per24, "hours": hours,
                 "false_per_24h_vf_free": per24_free}
    res["asys"] = {"pauses": asys_ref, "alarmed": asys_hit, "false": asys_false}


NOISY_FLAG = 4  # lib/qrs.NOISY (read from the device module below)


def _noise_one(job):
    db, name, out, snrs, write = job
    from tools.bench import noise
    qrs = _device_module("qrs")
    x, fs = records.wfdb_signal(db, name, 0)
    beats, symbols, ann = records.wfdb_beats(db, name)
    _, vf = records.wfdb_reference(db, name)
    t0 = noise.LEARN_S * fs
    ref = scoring._outside([b for b in beats if b >= t0], vf)
    win = int(round(0.150 * fs))
    vf_ref = [(a, b) for a, b, lab in records.wfdb_rhythms(db, name, len(x)) if lab in VF_LABELS]
    rows = []
    for snr, y in sorted(noise.noisy_record(x, fs, name, beats, symbols, snrs).items()):
        if write:
            noise.write_wfdb(write, name, snr, y, fs, ann)
        res = run_ecg(y.tolist(), fs)
        keep = [k for k, b in enumerate(res["beats"]) if b >= t0 and not any(a <= b <= e for a, e in vf)]
        det = [res["beats"][k] for k in keep]
        fl = [res["flags"][k] for k in keep]
        tp, fn, fp, false = scoring.match_detail(ref, det, win)
        fp_flagged = sum(1 for k in false if fl[k] & qrs.NOISY)
        flagged = sum(1 for f in fl if f & qrs.NOISY)
        vf_false = scoring.false_alarms(vf_ref, [(a, b) for a, b, lab in res["episodes"] if lab == "VF"])
        rows.append((name, snr, tp, fn, fp, fp_flagged, flagged, len(ref), vf_false))
    return rows


def run_noise(db, names=None, snrs=None, jobs=2, write=None):
    """DER per SNR of the published beats on our noise stress set, and
    the share of false detections the node flagged NOISY."""
    from tools.bench import noise
    names = _check_records(db, names or sorted(records.DS1_NAMES | records.DS2_NAMES))
    snrs = tuple(snrs or noise.SNRS)
    if write:
        Path(write).mkdir(parents=True, exist_ok=True)
    with Pool(max(1, jobs)) as pool:
        rows = [r for rs in pool.map(_noise_one, [(db, n, None, snrs, write) for n in names]) for r in rs]
    res = {}
    for label, subset in (("all", None), ("ds1", records.DS1_NAMES), ("ds2", records.DS2_NAMES)):
        sel = [r for r in rows if subset is None or r[0] in subset]
        if not sel:
            continue
        by = {}
        for snr in snrs:
            rs = [r for r in sel if r[1] == snr]
            tp, fn, fp, fpf, flg, nref, vff = (sum(r[k] for r in rs) for k in range(2, 9))
            by[snr] = {"vf_false": vff, "der": 100.0 * (fn + fp) / nref if nref else 0.0,
                       "se": 100.0 * tp / max(1, tp + fn), "ppv": 100.0 * tp / max(1, tp + fp),
                       "fp": fp, "fn": fn, "fp_flagged": fpf,
                       "flagged": flg, "det": tp + fp, "ref": nref}
        low = [by[s] for s in snrs if s <= 6]
        fp_low = sum(b["fp"] for b in low)
        res[label] = {"records": len(set(r[0] for r in sel)), "by_snr": by,
                      "fp_flagged_pct": 100.0 * sum(b["fp_flagged"] for b in low) / fp_low if fp_low else 100.0,
                      "beats_flagged_pct": 100.0 * sum(b["flagged"] for b in low) / max(1, sum(b["det"] for b in low))}
        print("%s, %d records (scored from 5:00, noise 2 min on / 2 min off):" % (label.upper(), res[label]["records"]))
        print("  %5s %8s %8s %8s %7s %7s %11s %9s" % ("SNR", "DER %", "Se %", "+P %", "FN", "FP", "FP flagged",
                                                     "false VF"))
        for snr in snrs:
            b = by[snr]
            print("  %5d %8.2f %8.2f %8.2f %7d %7d %10.1f%% %9d" % (
                snr, b["der"], b["se"], b["ppv"], b["fn"], b["fp"], 100.0 * b["fp_flagged"] / max(1, b["fp"]),
                b["vf_false"]))
        print("  SNR <= 6 dB: %.1f %% of false detections flagged NOISY by the node (%.1f %% of all its beats "
              "there are flagged)" % (res[label]["fp_flagged_pct"], res[label]["beats_flagged_pct"]))
    if write:
        print("noisy records written to %s (names as NSTDB: <record>e<SNR>)" % write)
    return res


def _ppg_one(job):
    db, name, out = job
    x, fs = records.bidmc_pleth(db, name)
    det = _device_module("ppg").PulseDetector(fs)
    peaks, node_hr = [], []
    for s in range(0, len(x), CHUNK):
        det.feed(x, -1, s, min(len(x), s + CHUNK))
        while len(peaks) < det.count:
            peaks.append(det.peak(len(peaks)))
        if (s + CHUNK) % fs < CHUNK:  # the node's published rate, once a second
            node_hr.append(det.hr_x10 / 10.0 if det.hr_x10 else None)
    _write_indices(out, name, peaks)
    ref = records.bidmc_hr(db, name)
    return (name, scoring.beat_hr_errors(peaks, fs, ref, len(x)), scoring.hr_errors(peaks, fs, ref, len(x)),
            scoring.node_hr_errors(node_hr, ref))


def run_ppg(db, out, names=None, jobs=2):
    names = names or records.bidmc_records(db)
    if not names:
        raise SystemExit("ppg: no BIDMC *_Signals.csv(.gz) in %s" % db)
    rows = _over_records(_ppg_one, jobs, db, out, names)
    mae = lambda e: sum(e) / max(1, len(e))  # noqa: E731
    print("%-9s %7s %10s %10s %10s" % ("record", "windows", "beat MAE", "median MAE", "node MAE"))
    for name, e, em, en in rows:
        print("%-9s %7d %10.2f %10.2f %10.2f" % (name, len(e), mae(e), mae(em), mae(en)))
    alle = [v for r in rows for v in r[1]]
    allm = [v for r in rows for v in r[2]]
    alln = [v for r in rows for v in r[3]]
    worst = max(rows, key=lambda r: mae(r[1]))
    print("%d records, %d windows (8 s, step 2 s) against the monitor's HR numeric:" % (len(rows), len(alle)))
    print("  from the beat lists (60 / mean interval of the detected peaks): MAE %.3f bpm; worst %s %.2f"
          % (mae(alle), worst[0], mae(worst[1])))
    print("  60 / median interval of the detected peaks: MAE %.3f bpm" % mae(allm))
    print("  the node's smoothed pulse rate (median of 8 IBIs, as published): MAE %.3f bpm over %d windows"
          % (mae(alln), len(alln)))
    return {"beat_mae": mae(alle), "mae": mae(allm), "node_mae": mae(alln), "windows": len(alle),
            "node_windows": len(alln), "records": len(rows)}


if __name__ == "__main__":
    sys.exit("use: python -m tools.bench qrs|ppg ...")
