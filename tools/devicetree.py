"""This checkout's device tree as it goes on a node: the one home shared by
`make deploy` (tools/deploy.py), the OTA bundle builder (tools/ota/bundle.py)
and the simulator, so that neither of the first two imports the other.

- stage(out): compile the tree (tools.compile_check: mpy-cross -march=xtensawin)
  into directory `out`; boot.py and main.py stay source. Returns {path: bytes}.
- slot_tree(tree): the same as it lies on the node's flash: firmware/ and
  lib/ in app slot a, the rest at the root.
- tree_version(), version_code(): firmware/version.py's VERSION, and the
  number the OTA state (stage0) and the manifest's rules compare.
- otamanifest(): firmware/otamanifest.py (the OTA format's one home) on
  CPython with tools/devicecode.py - no test shims.

Guarantees: stage() writes only under `out` (callers give it a temporary
folder of their own, so builds may run at once in one checkout) and raises
SystemExit naming the compiler's output when the tree does not compile.
Non-guarantee: nothing here talks to a board or signs anything.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tools import devicecode
from tools.paths import ROOT

SOURCE = ("boot.py", "main.py")  # copied as source: a board must be able to show them
SLOT = "a"                       # the app slot `make deploy` fills and confirms


def stage(out):
    """The device tree as it goes on a board, in directory `out`; returns
    {relative path: bytes}."""
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "tools.compile_check", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("the device tree does not compile:\n" + r.stdout + r.stderr)
    for name in SOURCE:
        (out / name).with_suffix(".mpy").unlink()
        shutil.copy(ROOT / name, out / name)
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()}


def slot_tree(tree):
    """A staged tree as it lies on the node: firmware/ and lib/ in slot a."""
    return {(SLOT + "/" + p if p.split("/")[0] in ("firmware", "lib") else p): data
            for p, data in tree.items()}


def otamanifest():
    """firmware/otamanifest.py on CPython (no test shims: tools/devicecode.py)."""
    devicecode.install()
    from firmware import otamanifest as m
    return m


def tree_version():
    """firmware/version.py's VERSION, e.g. "1.4.0"."""
    m = re.search(r'VERSION = "([\d.]+)"', (ROOT / "firmware" / "version.py").read_text())
    if m is None:
        raise SystemExit("firmware/version.py defines no VERSION = \"x.y.z\"")
    return m.group(1)


def version_code():
    """tree_version() as the OTA state stores it."""
    return otamanifest().version_code(tree_version())
