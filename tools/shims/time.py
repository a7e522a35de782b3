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

# after the built-in, reached with sys.path emptied; the names are this module's API
import vclock  # noqa: E402
from vclock import ticks_ms, ticks_us, ticks_cpu, ticks_add, ticks_diff  # noqa: E402, F401
from vclock import sleep_ms, sleep_us, sleep  # noqa: E402, F401



def gmtime(secs=None):
    """The ESP32 port's gmtime: seconds since 2000-01-01 (the port keeps
    MICROPY_EPOCH_IS_2000, py/mpconfig.h; the unix port counts from 1970)
    to an 8-tuple (year, month, mday, hour, minute, second, weekday 0 =
    Monday, yearday), no time zone (extmod/modtime.c time_gmtime)."""
    from machine import _civil, _days
    s = time() if secs is None else int(secs)
    days, r = s // 86400, s % 86400
    y, mo, d = _civil(days)
    return (y, mo, d, r // 3600, (r // 60) % 60, r % 60, (days + 5) % 7,
            days - _days(y, 1, 1) + 1)


localtime = gmtime  # the same function on the port (extmod/modtime.c)


def mktime(t):
    """Inverse of gmtime (8 or 9 items; the port's timeutils_mktime_2000
    normalises out-of-range fields the same way)."""
    from machine import _days
    if len(t) not in (8, 9):
        raise TypeError("mktime needs a tuple of length 8 or 9")
    y, mo = t[0], t[1]
    y += (mo - 1) // 12
    mo = (mo - 1) % 12 + 1
    return (_days(y, mo, 1) + t[2] - 1) * 86400 + t[3] * 3600 + t[4] * 60 + t[5]


def time():
    import simboard
    return simboard.board.rtc_seconds()


def time_ns():
    return time() * 1000000000


if hasattr(_builtin, "sleep_us"):
    vclock.real_sleep_us = _builtin.sleep_us
if hasattr(_builtin, "ticks_us"):
    vclock.real_ticks_us = _builtin.ticks_us
    vclock.real_diff_us = _builtin.ticks_diff
