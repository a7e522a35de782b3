"""Reading the shared recordings for the benchmarks (host side, CPython).

WFDB (MIT-BIH and any other WFDB database: any record name, any number of
signals): via the `wfdb` package, in the detector's nominal input unit of
5 uV (MIT-BIH's own ADC unit: its samples are used as stored; other gains
are rescaled from the header). BIDMC: the *_Signals / *_Numerics CSV(.gz)
files, PLETH scaled from 0..1 to 0..32768 integers.
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
DS1_NAMES = frozenset(str(r) for r in DS1)
DS2_NAMES = frozenset(str(r) for r in DS2)
PLETH_SCALE = 32768


def wfdb_records(db):
    db = Path(db)
    rec = db / "RECORDS"
    if rec.exists():
        names = rec.read_text().split()
    else:
        names = sorted(p.stem for p in db.glob("*.hea"))
    return [n for n in names if (db / (n + ".hea")).exists()]


class RecordError(ValueError):
    """A record that cannot be read as asked (named in the message)."""


def wfdb_signal(db, name, channel=0):
    """(samples as array('i') in 5 uV units, sample rate). Gain 200/mV
    (MIT-BIH) keeps the stored ADC values; other gains are rescaled about
    the ADC baseline; samples marked invalid hold the last valid one."""
    import wfdb
    path = str(Path(db) / name)
    try:
        h = wfdb.rdheader(path)
    except (OSError, ValueError) as e:
        raise RecordError("record %s in %s: cannot read its header (%s)" % (name, db, e))
    if not 0 <= channel < h.n_sig:
        raise RecordError("record %s has %d signal(s); channel %d does not exist"
                          % (name, h.n_sig, channel))
    r = wfdb.rdrecord(path, channels=[channel], physical=False)
    d = r.d_signal[:, 0].astype(int).tolist()
    gain = float(r.adc_gain[0] or 200.0)
    base = int(r.baseline[0]) if r.baseline else 0
    invalid = -(1 << (15 if r.fmt and r.fmt[0] in ("16", "61") else 11))
    last = base
    for i, v in enumerate(d):  # WFDB's invalid-sample marker: hold the last value
        if v == invalid:
            d[i] = last
        else:
            last = v
    if abs(gain - 200.0) > 1e-9:
        d = [int(round((v - base) * 200.0 / gain)) for v in d]
    return array("i", d), int(round(r.fs))


def has_annotations(db, name):
    return (Path(db) / (name + ".atr")).exists()


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


def wfdb_beats(db, name):
    """(beat sample indices, their WFDB symbols, the raw Annotation)."""
    import wfdb
    a = wfdb.rdann(str(Path(db) / name), "atr")
    keep = [(int(s), c) for s, c in zip(a.sample, a.symbol) if c in BEAT_SYMBOLS]
    return [k[0] for k in keep], [k[1] for k in keep], a


def wfdb_rhythms(db, name, length=None):
    """[(start, end, label)] from the rhythm annotations ('+' with aux
    '(AFIB', '(VFL', ...), label without the parenthesis; the last one runs
    to `length` (default: the record's length)."""
    import wfdb
    path = str(Path(db) / name)
    a = wfdb.rdann(path, "atr")
    if length is None:
        length = wfdb.rdheader(path).sig_len
    out, cur, t0 = [], None, 0
    for s, c, aux in zip(a.sample, a.symbol, a.aux_note):
        if c != "+":
            continue
        label = (aux or "").strip("\x00 ").lstrip("(")
        if cur is not None:
            out.append((t0, int(s), cur))
        cur, t0 = label, int(s)
    if cur is not None:
        out.append((t0, int(length), cur))
    return out


def record_length(db, name):
    import wfdb
    return int(wfdb.rdheader(str(Path(db) / name)).sig_len)


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
