"""What the ESP32 firmware offers, and what the VMs offer that it does not.

ESP32_MODULES: top-level modules importable on MicroPython 1.27
ESP32_GENERIC(-OTA) firmware (built-in C modules plus frozen Python), plus
the three hardware modules our shims provide. Device code may import only
these and the project's own modules (compile layer checks it).

HIDDEN: modules one of the VMs has and the chip lacks. The VM runners put a
stub for each first on sys.path that raises ImportError, so a test that
leans on them fails on the VM as it would on the chip.
"""

ESP32_MODULES = frozenset("""
__main__ _asyncio _boot _espnow _onewire _thread _webrepl apa106 array asyncio
binascii bluetooth btree builtins cmath collections cryptolib deflate dht
ds18x20 errno esp esp32 espnow flashbdev framebuf gc hashlib heapq inisetup io
json machine math micropython mip neopixel network ntptime onewire os platform
random re requests select socket ssl struct sys time tls uasyncio uctypes umqtt
upysh urequests vfs webrepl webrepl_setup websocket
""".split())

# u-prefixed names that 1.27 still resolves to its built-in C modules (the
# pinned umqtt.simple 1.3.4 uses them), and `ussl`, which it no longer has:
# firmware/uplink.py puts its own TLS wrapper into sys.modules under it.
ESP32_MODULES = ESP32_MODULES | frozenset({"usocket", "ustruct", "ubinascii", "ussl"})

# Attributes of `time` device code may use: the same on CPython+shims and on
# both VMs (time.time/time.sleep would read the host clock under CPython).
TIME_ATTRS = frozenset(
    "ticks_ms ticks_us ticks_cpu ticks_add ticks_diff sleep_ms sleep_us gmtime localtime mktime".split())

HIDDEN = sorted("""
abc argparse base64 copy datetime fnmatch functools gzip hmac html inspect
itertools js jsffi locale logging operator pathlib stat string tarfile types
typing unittest uu zlib dataclasses
""".split())

STUB = ('raise ImportError("{name}: not in the ESP32 firmware '
        '(hidden by the VitalNode VM test runner)")\n')

# ESP32's `collections` has deque, namedtuple and OrderedDict only; the wasm
# build adds defaultdict through a frozen package. This stub narrows it.
COLLECTIONS = '''import sys
_p = sys.path[:]
sys.path.clear()
try:
    import collections as _c
finally:
    sys.path.extend(_p)
deque = _c.deque
namedtuple = _c.namedtuple
OrderedDict = _c.OrderedDict
'''


def write_hide_dir(path):
    """Write the stubs into `path` (first on a unix-port MICROPYPATH)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, src in stub_files().items():
        (path / name).write_text(src)
    return path


def stub_files():
    """{filename: source} for the hide directory placed first on sys.path."""
    files = {name + ".py": STUB.format(name=name) for name in HIDDEN}
    files["collections.py"] = COLLECTIONS
    return files
