"""An emulated ESP32 on a pseudo-terminal, for mpremote and the tools.

    python -m tools.emu [--flash DIR]

Prints the pty path as its first line, then serves until killed. The board
is the MicroPython WebAssembly VM with the project's machine/esp32/network
shims; DIR (default build/emu-flash) keeps its filesystem (DIR/fs) and NVS
/ OTA state (DIR/state.json) across restarts, like a board's flash.
DIR/sensor.json ({"chip": "max86150"}, see simmax.attach_spec) puts a
simulated sensor board on its I2C bus; DIR/pins.json holds GPIO levels
from power-on. VITALNODE_EMU_SPEED=k lets the firmware's sleeps pass k
times faster than real time. Its `socket` makes one request/reply TCP
exchange through the host (tools/emu/socket.py: enough for HTTP/1.0).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tty
from pathlib import Path

from tools.paths import BUILD, ROOT, SHIMS


def _runtime_dir():
    """tools/emu's VM-side files plus the shims, as the VM will see them, in
    a folder of this emulator's own (several emulators may run at once)."""
    rt = Path(tempfile.mkdtemp(prefix="vitalnode-emu-rt-"))
    (rt / "shims").mkdir()
    for f in ("_emu.py", "os.py", "socket.py"):
        shutil.copy(ROOT / "tools" / "emu" / f, rt / f)
    for f in SHIMS.glob("*.py"):
        if f.name != "micropython.py":
            shutil.copy(f, rt / "shims" / f.name)
    return rt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flash", default=str(BUILD / "emu-flash"))
    a = ap.parse_args(argv)
    flash = os.path.abspath(a.flash)
    os.makedirs(flash, exist_ok=True)
    rt = _runtime_dir()
    try:
        return _serve(flash, rt)
    finally:
        shutil.rmtree(rt, ignore_errors=True)


def _serve(flash, rt):
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    print(os.ttyname(slave), flush=True)
    node = subprocess.Popen(["node", str(ROOT / "tools" / "emu" / "device.mjs"), str(master), flash,
                             str(rt)], pass_fds=(master,), cwd=ROOT, stdin=subprocess.DEVNULL)

    def stop(*_):
        node.terminate()
        try:
            node.wait(timeout=5)
        except subprocess.TimeoutExpired:
            node.kill()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # keep `slave` open: without a holder the pty hangs up between clients
    rc = node.wait()
    os.close(slave)
    return rc


if __name__ == "__main__":
    sys.exit(main())
