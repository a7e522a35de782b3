"""Where things are: the one place that knows the repository layout and the
shared data location (read in place, never copied into the repo)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIMS = ROOT / "tools" / "shims"
LIB = ROOT / "lib"
FIRMWARE = ROOT / "firmware"
DEVICE_TESTS = ROOT / "host_tests" / "device"
BUILD = ROOT / "build"
VENV_BIN = ROOT / ".venv" / "bin"


def data_dir() -> Path:
    """The shared recordings (MIT-BIH, BIDMC); VITALNODE_DATA overrides."""
    return Path(os.environ.get("VITALNODE_DATA", ROOT.parent / "shared" / "data")).resolve()


# what a user without ../shared/data needs, in one line
DATA_HELP = ("the recordings live in ../shared/data beside the checkout (mitdb/: PhysioNet's "
             "MIT-BIH Arrhythmia Database 1.0.0, NNN.hea/.dat/.atr; bidmc/: the BIDMC PPG and "
             "Respiration Dataset 1.0.0, bidmc_NN_Signals.csv.gz, its bidmc_csv files gzipped); "
             "get them from physionet.org (mitdb: python -c \"import wfdb; "
             "wfdb.dl_database('mitdb', 'DIR/mitdb')\") and set VITALNODE_DATA=DIR")


def missing_data(kind, name):
    """A one-line reason why recording `name` of `kind` ("mitdb" or
    "bidmc") cannot be read, or None if its files are there."""
    d = data_dir()
    if not d.is_dir():
        return "no recordings folder %s: %s" % (d, DATA_HELP)
    if not (d / kind).is_dir():
        return "no %s folder in %s: %s" % (kind, d, DATA_HELP)
    if kind == "mitdb":
        need = [d / kind / (name + ext) for ext in (".hea", ".dat", ".atr")]
        have = sorted(p.stem for p in (d / kind).glob("*.hea"))
    else:
        need = [d / kind / ("bidmc_%s_Signals.csv.gz" % name)]
        have = sorted(p.name[6:8] for p in (d / kind).glob("bidmc_*_Signals.csv.gz"))
    gone = [p.name for p in need if not p.exists()]
    if gone:
        return "%s has no %s (records there: %s)" % (d / kind, ", ".join(gone),
                                                       " ".join(have) or "none")
    return None


# what boot.py runs before any app slot (compiled at the root, never in a slot)
STAGE0_FILES = ("stage0.py", "nvsrec.py")


def device_files():
    """Every module that runs on the ESP32: firmware/, lib/, boot.py,
    main.py, and stage 0 (STAGE0_FILES)."""
    files = [ROOT / "boot.py", ROOT / "main.py"] + [ROOT / f for f in STAGE0_FILES]
    for d in (FIRMWARE, LIB):
        files += sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.exists()]


def venv_tool(name: str) -> str:
    p = VENV_BIN / name
    return str(p) if p.exists() else name
