"""`os` inside the emulated device: the built-in, with errno values
translated from Emscripten's to the ESP32's (see _emu.translate)."""
import sys

_p = sys.path[:]
sys.path.clear()
try:
    import os as _os
finally:
    sys.path.extend(_p)
from _emu import wrap  # noqa: E402 - after the built-in os, reached with sys.path emptied

sep = "/"
listdir = wrap(_os.listdir)
ilistdir = wrap(_os.ilistdir)
stat = wrap(_os.stat)
statvfs = wrap(_os.statvfs)
mkdir = wrap(_os.mkdir)
rmdir = wrap(_os.rmdir)
remove = wrap(_os.remove)
unlink = wrap(_os.remove)
rename = wrap(_os.rename)
chdir = wrap(_os.chdir)
getcwd = _os.getcwd
for _n in ("urandom", "mount", "umount", "uname", "sync", "dupterm", "VfsPosix"):
    if hasattr(_os, _n):
        globals()[_n] = getattr(_os, _n)


class _Uname:
    def __init__(self):
        import emuhost
        self.sysname = emuhost.sysname()
        self.nodename = self.sysname
        self.release = "1.27.0"
        self.version = "v1.27.0 (VitalNode emulated ESP32)"
        self.machine = "VitalNode emulated ESP32 (MicroPython wasm)"


def uname():  # the wasm port lacks it; tools identify the board by it
    return _Uname()


if "urandom" not in globals():
    import random as _r

    def urandom(n):  # the wasm port lacks it; the ESP32 has a hardware RNG
        return bytes(_r.getrandbits(8) for _ in range(n))
