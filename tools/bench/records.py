"""Reading the shared recordings for the benchmarks (host side, CPython).

MIT-BIH: WFDB via the `wfdb` package, raw ADC units (5 uV per unit, the
detector's nominal input). BIDMC: the *_Signals / *_Numerics CSV(.gz) files,
PLETH scaled from 0..1 to 0..32768 integers.
"""
import csv
import gzip
from array import array
from pathlib import Path

# AAMI EC57 beat labels (WFDB symbols); '!' flutter waves are not beats
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
DS1 = (101, 106, 108, 109, 112, 114, 115, 116, 118, 119, 122, 124, 201, 203, 205, 207, 208,
       209, 215, 220, 223, 230)
DS2 = (100, 103, 105, 111, 113, 117, 121, 123, 200, 202, 210, 212, 213, 214, 219, 221, 222,
       228, 231, 232, 233, 234)
PLETH_SCALE = 32768


def wfdb_records(db):
    db = Path(db)
    rec = db / "RECORDS"
    if rec.exists():
        names = rec.read_text().split()
    else:
        names = sorted(p.stem for p in db.glob("*.hea"))
    return [n for n in names if (db / (n + ".hea")).exists()]


def wfdb_signal(db, name, channel=0):
    """(samples as array('i') in ADC units, sample rate)."""
    import wfdb
    r = wfdb.rdrecord(str(Path(db) / name), channels=[channel], physical=False)
    return array("i", r.d_signal[:, 0].astype(int).tolist()), int(r.fs)


def wfdb_reference(db, name):
    """(beat sample indices, [(start, end)] ventricular flutter episodes)."""
    import wfdb
    a = wfdb.rdann(str(Path(db) / name), "atr")
    beats = [int(s) for s, c in zip(a.sample, a.symbol) if c in BEAT_SYMBOLS]
    vf, start = [], None
    for s, c in zip(a.sample, a.symbol):
        if c == "[":
            start = int(s)
        elif c == "]" and start is not None:
            vf.append((start, int(s)))
            start = None
    if start is not None:
        vf.append((start, 1 << 40))
    return beats, vf


def _open(path):
    path = str(path)
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def _column(path, name):
    with _open(path) as f:
        rows = csv.reader(f)
        head = [c.strip() for c in next(rows)]
        i = head.index(name)
        out = []
        for r in rows:
            v = r[i].strip() if i < len(r) else ""
            out.append(float(v) if v not in ("", "NaN", "nan") else None)
    return out


def bidmc_records(db):
    db = Path(db)
    names = set()
    for p in db.glob("*_Signals.csv*"):
        names.add(p.name.split("_Signals")[0])
    return sorted(names)


def bidmc_file(db, name, kind):
    for ext in (".csv", ".csv.gz"):
        p = Path(db) / ("%s_%s%s" % (name, kind, ext))
        if p.exists():
            return p
    raise FileNotFoundError("%s: no %s_%s.csv(.gz)" % (db, name, kind))


def bidmc_pleth(db, name):
    """(PLETH as array('i') 0..32768, 125 Hz); gaps hold the last value."""
    vals = _column(bidmc_file(db, name, "Signals"), "PLETH")
    out, last = array("i"), 0
    for v in vals:
        if v is not None:
            last = int(round(v * PLETH_SCALE))
        out.append(last)
    return out, 125


def bidmc_hr(db, name):
    """Monitor HR numerics at 1 Hz (None where missing)."""
    return _column(bidmc_file(db, name, "Numerics"), "HR")
