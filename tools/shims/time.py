"""`time` for MicroPython VMs running simulated nodes: the built-in module,
with ticks and sleeps moved onto the virtual clock (vclock).

MicroPython lets a .py file on sys.path extend the built-in `time`; the
built-in itself is reached by importing with sys.path emptied. CPython never
loads this file (its `time` is built in and not extensible): there
tools/hostshims.py adds the ticks/sleep_ms names instead.
"""
import sys

_path = sys.path[:]
sys.path.clear()
try:
    import time as _builtin
finally:
    sys.path.extend(_path)
    del _path

import vclock
from vclock import ticks_ms, ticks_us, ticks_cpu, ticks_add, ticks_diff
from vclock import sleep_ms, sleep_us, sleep

gmtime = _builtin.gmtime
localtime = _builtin.localtime
mktime = _builtin.mktime


def time():
    import simboard
    return simboard.board.rtc_seconds()


def time_ns():
    return time() * 1000000000


if hasattr(_builtin, "sleep_us"):
    vclock.real_sleep_us = _builtin.sleep_us
