"""Make device code importable under CPython: the shims directory (machine,
esp32, network, micropython, the virtual clock), lib/ (as /lib on the chip)
and the repo root (boot.py, main.py, firmware/) go first on sys.path, and
CPython's built-in `time` gains the MicroPython names (ticks_*, sleep_ms,
sleep_us) on the virtual clock. time.sleep/time.time stay CPython's own:
device code may not call them (the compile layer rejects it), so both
runtimes see the same time.
"""
import sys
import time

from tools.paths import LIB, ROOT, SHIMS

_installed = False


def install():
    global _installed
    if _installed:
        return
    for p in (str(ROOT), str(LIB), str(SHIMS)):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    if getattr(sys.modules.get("micropython"), "VITALNODE_MINIMAL", False):
        del sys.modules["micropython"]  # tools/devicecode's const only: the shims' one from here on
    import vclock
    for name in vclock.MP_TIME_NAMES:
        setattr(time, name, getattr(vclock, name))
    vclock.real_sleep_us = lambda us: time.sleep(us / 1e6)
    vclock.real_ticks_us = lambda: int(time.monotonic() * 1000000)
    vclock.real_diff_us = lambda a, b: a - b
    # MicroPython's gc.mem_free/mem_alloc have no CPython meaning: -1 says
    # "unknown" (heap figures come from the VMs, never from CPython)
    import gc
    if not hasattr(gc, "mem_free"):
        gc.mem_free = lambda: -1
        gc.mem_alloc = lambda: -1
    if not hasattr(gc, "threshold"):
        gc.threshold = lambda *a: -1  # MicroPython's collection threshold: no CPython meaning
    _installed = True
