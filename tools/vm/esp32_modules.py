"""What the ESP32 firmware contains, derived from the MicroPython 1.27.0
release's own sources, and what the VMs offer that it does not.

    from tools.vm import esp32_modules as m
    m.builtin()        # C modules the ESP32_GENERIC build registers
    m.stock_frozen()   # Python modules the stock ESP32_GENERIC firmware freezes
    m.our_frozen()     # what our manifest.py freezes (port start-up modules,
                       # ssl, the firmware, lib/, umqtt.simple)
    m.device_allowed() # what device code may import (see below)

builtin(): every MP_REGISTER_MODULE / MP_REGISTER_EXTENSIBLE_MODULE in
py/, extmod/ and the ESP32 port's own sources (ports/esp32/esp32_common.cmake
lists them), kept when its preprocessor guard holds for the ESP32 config:
each file's conditional lines are run through gcc's preprocessor with
py/mpconfig.h, ports/esp32/mpconfigport.h and the ESP32_GENERIC board's
header, and the sdkconfig defaults the board's cmake names. The only
values typed by hand are the ESP-IDF target facts below (IDF_FACTS).
stock_frozen() / our_frozen(): the board manifest and ours, resolved by
MicroPython's own manifest tool (tools/manifestfile.py) with require()
from the release's micropython-lib.

device_allowed(): device code runs on two layouts - the stock firmware with
our .mpy files on the flash (`make deploy`) and a firmware built from our
manifest.py (FROZEN=1). So a module it imports must be built in, or frozen
in both builds, or our own (firmware package, lib/). Plus the ESP32's
`machine`, `esp32` and `network`, which the shims provide on the host.

HIDDEN: modules a VM used by the tests has and the chip lacks; the VM
runners put a stub for each first on sys.path that raises ImportError.

Results are cached in .cache/micropython (keyed by the archive checksum and
manifest.py), so the compile layer does not preprocess on every run.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import mpbuild
from tools.paths import ROOT

# ESP-IDF facts for the ESP32 target that mpconfigport.h reads (sdkconfig.h
# and soc/soc_caps.h are generated or shipped by ESP-IDF, which is not here)
IDF_FACTS = {
    "CONFIG_IDF_TARGET_ESP32": "1",
    "CONFIG_IDF_TARGET": '"esp32"',
    "CONFIG_IDF_TARGET_ARCH_XTENSA": "1",
    "CONFIG_FREERTOS_UNICORE": "0",
    "SOC_DAC_SUPPORTED": "1",
    "SOC_I2S_SUPPORTED": "1",
    "SOC_PCNT_SUPPORTED": "1",
    "SOC_I2C_SUPPORT_SLAVE": "1",
    "SOC_TOUCH_SENSOR_SUPPORTED": "1",
    "SOC_SDMMC_HOST_SUPPORTED": "1",
    "SOC_RMT_SUPPORTED": "1",
    "SOC_ULP_SUPPORTED": "1",
    "SOC_ADC_SUPPORTED": "1",
    "SOC_WIFI_SUPPORTED": "1",
    "SOC_BT_SUPPORTED": "1",
}
BOARD = "ESP32_GENERIC"
_HEADERS_STUBBED = ("esp_random.h", "esp_system.h", "freertos/FreeRTOS.h", "sdkconfig.h",
                    "soc/soc_caps.h")
_REG = re.compile(r"^\s*MP_REGISTER_(?:EXTENSIBLE_)?MODULE\(\s*MP_QSTR_(\w+)")

# modules the shims give device code on the host; in ROM on the chip
SHIMMED = frozenset({"machine", "esp32", "network"})
# u-prefixed names that 1.27 still resolves to its built-in C modules (the
# pinned umqtt.simple 1.3.4 uses them), and `ussl`, which it no longer has:
# firmware/netguard.py puts its own TLS wrapper into sys.modules under it.
ALIASES = frozenset({"usocket", "ustruct", "ubinascii", "ussl"})

# Attributes of `time` device code may use: the same on CPython+shims and on
# the VMs. time.time/sleep/gmtime/localtime/mktime would read the host clock
# or count from 1970 under CPython (the chip counts from 2000): wall time
# goes through machine.RTC, which the shims give both runtimes alike.
TIME_ATTRS = frozenset(
    "ticks_ms ticks_us ticks_cpu ticks_add ticks_diff sleep_ms sleep_us".split())


def _tree():
    return mpbuild.source_tree("plain")


def _port_sources(tree):
    """ports/esp32 C files the ESP32 build compiles (esp32_common.cmake)."""
    text = (tree / "ports" / "esp32" / "esp32_common.cmake").read_text()
    m = re.search(r"list\(APPEND MICROPY_SOURCE_PORT(.*?)\)", text, re.S)
    names = re.findall(r"(\w+\.c)", m.group(1)) if m else []
    return [tree / "ports" / "esp32" / n for n in names]


def _cmake_defines(tree):
    """Features the ESP32 build's cmake turns on (`set(MICROPY_PY_BTREE ON)`)
    and the definitions it passes to the compiler (MICROPY_VFS_LFS2=1)."""
    text = (tree / "ports" / "esp32" / "esp32_common.cmake").read_text()
    out = {name: "1" for name in re.findall(r"set\((MICROPY_PY_\w+) ON\)", text)}
    m = re.search(r"target_compile_definitions\(\$\{MICROPY_TARGET\} PUBLIC(.*?)\)", text, re.S)
    if m:
        out.update(dict(re.findall(r"\b(MICROPY_\w+)=(\w+)", m.group(1))))
    return out


def _sdkconfig(tree):
    """#defines from the sdkconfig defaults ESP32_GENERIC's cmake lists,
    the IDF facts and the port's cmake definitions."""
    board = tree / "ports" / "esp32" / "boards" / BOARD
    files = re.findall(r"boards/[\w./-]+", (board / "mpconfigboard.cmake").read_text())
    out = dict(IDF_FACTS)
    out.update(_cmake_defines(tree))
    for rel in files:
        p = tree / "ports" / "esp32" / rel
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            m = re.match(r"(CONFIG_\w+)=(.*)$", line.strip())
            if m:
                v = m.group(2)
                out[m.group(1)] = "1" if v == "y" else v
    return out


def _guarded_registrations(path):
    """[(module name, guard expression)] for the file's module
    registrations: the guard is the conjunction of the enclosing #if /
    #elif / #else branches (conditionals that close before a registration
    do not matter and are not evaluated)."""
    out = []
    stack = []  # per open #if: [conditions of earlier branches, current condition]
    lines = path.read_text(errors="replace").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i]
        line = re.sub(r"/\*.*?\*/|//.*$", "", line)
        m = _REG.match(line)
        d = re.match(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$", line)
        if m:
            guard = " && ".join(["1"] + [c for frame in stack for c in
                                         ["!(%s)" % e for e in frame[0]] + [frame[1]]])
            out.append((m.group(1), guard))
        elif d:
            kind, rest = d.group(1), d.group(2).strip()
            if kind == "if":
                stack.append([[], "(%s)" % rest])
            elif kind == "ifdef":
                stack.append([[], "defined(%s)" % rest])
            elif kind == "ifndef":
                stack.append([[], "!defined(%s)" % rest])
            elif kind == "elif" and stack:
                stack[-1][0].append(stack[-1][1])
                stack[-1][1] = "(%s)" % rest
            elif kind == "else" and stack:
                stack[-1][0].append(stack[-1][1])
                stack[-1][1] = "1"
            elif kind == "endif" and stack:
                stack.pop()
        i += 1
    return out


def _derive_builtin(tree):
    files = sorted((tree / "py").glob("*.c")) + sorted((tree / "extmod").glob("*.c")) \
        + _port_sources(tree)
    found = set()
    with tempfile.TemporaryDirectory() as tmp:
        stub = Path(tmp)
        for h in _HEADERS_STUBBED:
            (stub / h).parent.mkdir(parents=True, exist_ok=True)
            (stub / h).write_text("")
        (stub / "sdkconfig.h").write_text("".join("#define %s %s\n" % kv
                                                  for kv in _sdkconfig(tree).items()))
        (stub / "soc" / "soc_caps.h").write_text("")
        inc = ["-I" + str(stub), "-I" + str(tree), "-I" + str(tree / "ports" / "esp32"),
               "-I" + str(tree / "ports" / "esp32" / "boards" / BOARD)]
        for f in files:
            regs = _guarded_registrations(f)
            if not regs:
                continue
            src = '#include "sdkconfig.h"\n#include "py/mpconfig.h"\n' + "".join(
                "#if %s\nVN_MODULE %s\n#endif\n" % (guard, name) for name, guard in regs)
            r = subprocess.run(["gcc", "-E", "-P", "-x", "c", "-"] + inc, input=src,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("preprocessing %s for the ESP32 config failed:\n%s"
                                   % (f.relative_to(tree), r.stderr[-2000:]))
            found |= set(re.findall(r"^VN_MODULE (\w+)$", r.stdout, re.M))
    return found


def _manifest_modules(tree, manifest, **options):
    """Top-level module names a manifest freezes, resolved by the release's
    own manifest tool."""
    sys.path.insert(0, str(tree / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(tree), "MPY_LIB_DIR": str(tree / "lib" / "micropython-lib"),
        "PORT_DIR": str(tree / "ports" / "esp32"), "BOARD_DIR": str(
            tree / "ports" / "esp32" / "boards" / BOARD)})
    m.include(str(manifest), **options)
    names = set()
    for r in m.files():
        target = r.target_path
        top = target.split("/")[0]
        names.add(top[:-3] if top.endswith((".py", ".mpy")) and "/" not in target else top)
        if target.endswith("/__init__.py"):
            names.add(target.split("/")[0])
    return {n[:-4] if n.endswith(".mpy") else n for n in names}


def _cache_path(tree):
    h = hashlib.sha256()
    h.update((tree / ".." / ".." / ".key").resolve().as_posix().encode())
    h.update(mpbuild._archive_sha().encode())
    h.update((ROOT / "manifest.py").read_bytes())
    h.update(Path(__file__).read_bytes())
    return mpbuild.cache_dir() / ("esp32-modules-%s.json" % h.hexdigest()[:16])


_memo = {}


def _all():
    if _memo:
        return _memo
    tree = _tree()
    cache = _cache_path(tree)
    if cache.exists():
        data = json.loads(cache.read_text())
    else:
        data = {
            "builtin": sorted(_derive_builtin(tree)),
            "stock_frozen": sorted(_manifest_modules(
                tree, tree / "ports" / "esp32" / "boards" / "manifest.py")),
            "our_frozen": sorted(_manifest_modules(tree, ROOT / "manifest.py")),
        }
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp%d" % os.getpid())
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(cache)
    _memo.update({k: frozenset(v) for k, v in data.items()})
    return _memo


def builtin():
    return _all()["builtin"]


def stock_frozen():
    return _all()["stock_frozen"]


def our_frozen():
    return _all()["our_frozen"]


def device_allowed():
    """Non-project modules device code may import (see the module doc)."""
    return builtin() | (stock_frozen() & our_frozen()) | SHIMMED | ALIASES


# Modules the VMs used by the tests have and the chip lacks (unix port
# extras, and CPython-ish names some builds freeze); a stub for each is put
# first on sys.path.
HIDDEN = sorted("""
abc argparse base64 copy datetime fnmatch functools gzip hmac html inspect
itertools js jsffi locale logging operator pathlib stat string tarfile types
typing unittest uu zlib dataclasses termios ffi mip asyncio uasyncio requests
urequests ntptime webrepl upysh
""".split())

STUB = ('raise ImportError("{name}: not in the ESP32 firmware '
        '(hidden by the VitalNode VM test runner)")\n')

# ESP32's `collections` has deque, namedtuple and OrderedDict only; some
# builds add defaultdict through a frozen package. This stub narrows it.
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


if __name__ == "__main__":
    for k, v in _all().items():
        print("%s (%d): %s" % (k, len(v), " ".join(sorted(v))))
