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


def device_files():
    """Every module that runs on the ESP32: firmware/, lib/, boot.py,
    main.py, and the stage 0 boot.py runs (stage0.py, nvsrec.py: compiled
    at the root, never in an app slot)."""
    files = [ROOT / "boot.py", ROOT / "main.py", ROOT / "stage0.py", ROOT / "nvsrec.py"]
    for d in (FIRMWARE, LIB):
        files += sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.exists()]


def venv_tool(name: str) -> str:
    p = VENV_BIN / name
    return str(p) if p.exists() else name
