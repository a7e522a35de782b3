"""`python -m tools.bench qrs|ppg`: run the device detector modules (lib/qrs.py,
lib/ppg.py - the code the firmware imports) over a database on CPython,
write one detected index per line to OUT/<record>.txt, and score them.

The detectors are integer-only and give the same output on the MicroPython
VMs (host_tests/host/test_detect_parity.py proves it on full records).
"""
import sys
from multiprocessing import Pool
from pathlib import Path

from tools.bench import records, scoring

CHUNK = 32  # samples per feed() call, as the node feeds a FIFO read


def _device_module(name):
    from tools import hostshims
    hostshims.install()
    return __import__(name)


def _collect(det, x, index_of):
    """Feed x in FIFO-sized chunks; every reported index, in order."""
    out = []
    for s in range(0, len(x), CHUNK):
        det.feed(x, -1, s, min(len(x), s + CHUNK))
        while len(out) < det.count:
            out.append(index_of(len(out)))
    return out


def detect_qrs(x, fs, mains=60):
    det = _device_module("qrs").QRSDetector(fs, mains)
    return _collect(det, x, det.beat)


def detect_pulses(x, fs):
    det = _device_module("ppg").PulseDetector(fs)
    return _collect(det, x, det.peak)


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
    det = detect_qrs(x, fs)
    _write_indices(out, name, det)
    ref, vf = records.wfdb_reference(db, name)
    return (name, scoring.score_record(ref, det, fs, vf),
            scoring.score_record(ref, det, fs, vf, strict=True), len(x) / fs)


def run_qrs(db, out, names=None, channel=0, jobs=2):
    """Detect and score; returns the figures as a dict."""
    names = names or records.wfdb_records(db)
    if not names:
        raise SystemExit("qrs: no WFDB records (*.hea) in %s" % db)
    rows = _over_records(_qrs_one, jobs, db, out, names, channel)
    print("%-6s %7s %5s %5s %8s %8s" % ("record", "TP", "FN", "FP", "Se%", "+P%"))
    for name, (tp, fn, fp), _, _ in rows:
        se, ppv = scoring.gross([(tp, fn, fp)])[:2]
        print("%-6s %7d %5d %5d %8.2f %8.2f" % (name, tp, fn, fp, se, ppv))
    res = {}
    for label, subset in (("all", None), ("ds1", records.DS1), ("ds2", records.DS2)):
        sel = [r for r in rows if subset is None or int(r[0]) in subset]
        if not sel:
            continue
        se, ppv, tp, fn, fp = scoring.gross([r[1] for r in sel])
        sse, sppv = scoring.gross([r[2] for r in sel])[:2]
        worst_se = min(sel, key=lambda r: scoring.gross([r[1]])[0])
        worst_p = min(sel, key=lambda r: scoring.gross([r[1]])[1])
        res[label] = {"records": len(sel), "se": se, "ppv": ppv, "tp": tp, "fn": fn, "fp": fp,
                      "se_strict": sse, "ppv_strict": sppv,
                      "worst_se": (worst_se[0], scoring.gross([worst_se[1]])[0]),
                      "worst_ppv": (worst_p[0], scoring.gross([worst_p[1]])[1])}
        print("%-4s %2d records: Se %.3f %%  +P %.3f %%  (TP %d FN %d FP %d); worst Se %s %.2f %%, "
            "worst +P %s %.2f %%; VF episodes scored too: Se %.3f %% +P %.3f %%"
            % (label.upper(), len(sel), se, ppv, tp, fn, fp, worst_se[0], res[label]["worst_se"][1],
               worst_p[0], res[label]["worst_ppv"][1], sse, sppv))
    print("signal: %.0f s; detections in %s/<record>.txt (sample index at the record's rate)"
        % (sum(r[3] for r in rows), out))
    return res


def _ppg_one(job):
    db, name, out = job
    x, fs = records.bidmc_pleth(db, name)
    peaks = detect_pulses(x, fs)
    _write_indices(out, name, peaks)
    errs = scoring.hr_errors(peaks, fs, records.bidmc_hr(db, name), len(x))
    return name, errs


def run_ppg(db, out, names=None, jobs=2):
    names = names or records.bidmc_records(db)
    if not names:
        raise SystemExit("ppg: no BIDMC *_Signals.csv(.gz) in %s" % db)
    rows = _over_records(_ppg_one, jobs, db, out, names)
    allerr = []
    for name, errs in rows:
        allerr += errs
        print("%-9s windows %3d  HR MAE %.2f bpm" % (name, len(errs), sum(errs) / max(1, len(errs))))
    mae = sum(allerr) / max(1, len(allerr))
    worst = max(rows, key=lambda r: sum(r[1]) / max(1, len(r[1])))
    print("%d records, %d windows (8 s, step 2 s): HR MAE %.3f bpm vs the monitor's HR; worst %s %.2f"
        % (len(rows), len(allerr), mae, worst[0], sum(worst[1]) / max(1, len(worst[1]))))
    return {"mae": mae, "windows": len(allerr), "records": len(rows)}


if __name__ == "__main__":
    sys.exit("use: python -m tools.bench qrs|ppg ...")
