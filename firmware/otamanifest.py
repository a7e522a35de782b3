"""OTA bundle manifests: the signed envelope and the rules a manifest must
meet before a single byte of an update is written.

    from firmware import otamanifest
    m = otamanifest.open_signed(envelope, pubkey_n)    # signature first
    otamanifest.check(m, hw=HW_MODEL, version=v, counter=c, now_s=t)

Envelope (what the update server serves as `manifest.vnm`):
    b"VNOTA1\\n" | RSA-3072-PSS signature (384 bytes) | manifest JSON
The signature covers the magic and the JSON bytes (RSASSA-PSS, SHA-256,
MGF1-SHA256, 32-byte salt). Nothing is JSON-parsed before it verifies, and
then only by the strict parser host and node share (firmware/sjson.py:
duplicate keys, NaN, out-of-range integers refused by name).

Manifest (format 1): product, hw, version "X.Y.Z", counter (security
counter, anti-rollback), created/expires (Unix seconds), max_file/max_total
(bytes), bound (true: only the devices the manifest names may install it,
and each also needs the server's per-device HMAC), devices (with bound
true and only then: 1..MAX_DEVICES device ids, 12 lower-case hex digits,
inside the signed part), files [{path, size, sha256}], optional image
{size, sha256} (a MicroPython firmware image for the next app partition).

Every rejection is OtaError(reason, detail): reason is one word that the
security log and the host tools report.
Non-guarantee: the wall-clock checks are only as good as the node's clock
(firmware/clock.py: set only from the gateway's authenticated
acknowledgements); with no clock the newest `created` a confirmed update
had, capped at trusted time + clock.SKEW_S, is the time floor (TUF).
"""
import hashlib

import rsapss
from micropython import const

from firmware.clock import SKEW_S

MAGIC = b"VNOTA1\n"
SIG_LEN = const(384)
MANIFEST_MAX = const(8192)  # bytes of JSON
MAX_FILES = const(64)
SLOT_MAX = const(393216)  # bytes per app slot: two slots + data fit the 960 KiB vfs
FILE_MAX = const(262144)
IMAGE_MAX = const(0x180000)  # an ESP32_GENERIC-OTA app partition
_PATH_MAX = const(64)
_TOPS = ("firmware", "lib")
_EXTS = (".mpy", ".py", ".json")
_FIELDS = ("format", "product", "hw", "version", "counter", "created", "expires",
           "max_file", "max_total", "bound", "devices", "files", "image")
MAX_DEVICES = const(64)
PRODUCT = "vitalnode"
# Top-level module names a bundle's lib/ may not take: the slot's lib/ is on
# sys.path before the frozen modules and the port's extensible built-ins, so
# lib/<name> would shadow what stage 0, the installer and the trial import
# (boot, stage0, nvsrec, hashlib, esp32, ...) or the slot's own package.
# The chip's built-in and frozen modules are all here (a host test checks
# this list against the MicroPython 1.27 ESP32 build: tools/vm/esp32_modules).
RESERVED = ("boot", "main", "stage0", "nvsrec", "firmware", "_boot", "inisetup", "flashbdev",
            "apa106", "espnow", "ssl", "__main__", "_asyncio", "_espnow", "_onewire", "_thread",
            "_webrepl", "array", "binascii", "bluetooth", "btree", "builtins", "cmath",
            "collections", "cryptolib", "deflate", "errno", "esp", "esp32", "framebuf", "gc",
            "hashlib", "heapq", "io", "json", "machine", "math", "micropython", "network", "os",
            "platform", "random", "re", "select", "socket", "struct", "sys", "time", "tls",
            "uctypes", "vfs", "websocket", "asyncio", "ntptime", "webrepl", "mip", "requests",
            "onewire", "dht", "neopixel", "uasyncio")


class OtaError(Exception):
    """An update refused: .reason (one word) and .detail (why)."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self):
        return "ota %s: %s" % (self.reason, self.detail)


class Manifest:
    """A verified manifest's fields (after open_signed). files: the byte
    spans of the file entries in the signed text, which each_file()
    parses one at a time (as objects the list would cost the node 8 KB);
    nfiles: how many."""

    def __init__(self, d, digest, body):
        self.version = d["version"]
        self.version_code = version_code(d["version"])
        self.counter = d["counter"]
        self.hw = d["hw"]
        self.created = d["created"]
        self.expires = d["expires"]
        self.bound = d["bound"]
        self.devices = d.get("devices") or ()
        self.files = d["files"]
        self.nfiles = len(self.files)
        self.image = d.get("image")
        self.digest = digest  # SHA-256 of the envelope's signed part
        self.body = body  # the signed JSON (a view of the envelope)

    def each_file(self):
        """Each file's {path, size, sha256}, in the manifest's order."""
        return _each(self.files, self.body)


def _path_at(span, body):
    """The path of the file entry at `span` (parsed again)."""
    from firmware.sjson import loads
    e = loads(body[span[0]:span[1]])
    return e["path"] if isinstance(e, dict) else None  # (an entry: open_signed checked it)


def _each(spans, body):
    from firmware.sjson import loads
    for s, e in spans:
        yield loads(body[s:e])  # checked whole by open_signed: it parses


def version_code(text):
    """'X.Y.Z' (each 0..999) -> X*10^6 + Y*10^3 + Z, or OtaError."""
    from firmware.version import code
    try:
        return code(text)
    except ValueError as e:
        raise OtaError("schema", str(e))


def signed_digest(envelope):
    """SHA-256 of what the signature covers: the magic and the JSON."""
    h = hashlib.sha256(MAGIC)
    h.update(memoryview(envelope)[len(MAGIC) + SIG_LEN:])  # no copy of the JSON
    return h.digest()


def open_signed(envelope, n):
    """Verify the envelope's signature with the public modulus n; return
    the Manifest. Raises OtaError before parsing anything unsigned."""
    ml = len(MAGIC)
    if len(envelope) < ml + SIG_LEN + 2 or bytes(envelope[:ml]) != MAGIC:  # a view too
        raise OtaError("format", "not a VitalNode OTA manifest")
    if len(envelope) > ml + SIG_LEN + MANIFEST_MAX:
        raise OtaError("size", "manifest over %d bytes" % MANIFEST_MAX)
    body = memoryview(envelope)[ml + SIG_LEN:]  # parsed in place: no 5 KB copy
    digest = signed_digest(envelope)
    if not rsapss.verify(n, bytes(envelope[ml:ml + SIG_LEN]), digest):
        raise OtaError("signature", "manifest signature does not verify")
    from firmware.sjson import JsonError, loads  # strict: the host tools parse with it too
    try:
        d = loads(body, spans="files")
    except JsonError as e:  # duplicate keys, NaN, out-of-range integers... by name
        raise OtaError("schema", "signed manifest is not strict JSON: %s" % e)
    _schema(d, body)
    return Manifest(d, digest, body)


def _int(d, key, lo, hi):
    v = d.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise OtaError("schema", "%s must be an integer %d..%d" % (key, lo, hi))
    return v


def _hex64(v, what):
    if not isinstance(v, str) or len(v) != 64:
        raise OtaError("schema", "%s sha256 must be 64 hex digits" % what)
    for c in v:
        if c not in "0123456789abcdef":
            raise OtaError("schema", "%s sha256 must be lowercase hex" % what)


def check_path(p):
    """A slot-relative file path: firmware/ or lib/, plain names, known
    extensions. Traversal, absolute paths and odd characters are refused."""
    if not isinstance(p, str) or not p or len(p) > _PATH_MAX:
        raise OtaError("path", "bad file path")
    parts = p.split("/")
    if parts[0] not in _TOPS or len(parts) < 2 or len(parts) > 3:
        raise OtaError("path", "%r: files go under firmware/ or lib/" % p)
    for part in parts:
        if not part or part[0] == "." or part in ("..", "."):
            raise OtaError("path", "%r: empty, hidden or parent component" % p)
        for c in part:
            if not (c.isalpha() or c.isdigit() or c in "_-.") or ord(c) > 127:
                raise OtaError("path", "%r: character %r not allowed" % (p, c))
    for e in _EXTS:
        if p.endswith(e):
            break
    else:
        raise OtaError("path", "%r: only .mpy, .py and .json files" % p)
    if parts[0] == "lib":
        name = parts[1] if len(parts) == 3 else parts[1][:parts[1].find(".")]
        if name in RESERVED:
            raise OtaError("path", "%r would shadow the module %r that stage 0, the installer "
                           "or the system imports" % (p, name))


def _schema(d, body):
    if not isinstance(d, dict):
        raise OtaError("schema", "manifest must be an object")
    for k in d:
        if k not in _FIELDS:
            raise OtaError("schema", "unknown field %r" % (k,))
    if d.get("format") != 1 or type(d.get("format")) is not int:
        raise OtaError("format", "manifest format must be 1")
    if d.get("product") != PRODUCT:
        raise OtaError("schema", "product must be %r" % PRODUCT)
    if not isinstance(d.get("hw"), str) or not d["hw"]:
        raise OtaError("schema", "hw must be a string")
    version_code(d.get("version"))
    _int(d, "counter", 0, 0x7FFFFFFF)
    _int(d, "created", 0, 0x7FFFFFFF)
    _int(d, "expires", 0, 0x7FFFFFFF)
    _int(d, "max_file", 1, FILE_MAX)
    _int(d, "max_total", 1, SLOT_MAX)
    if type(d.get("bound")) is not bool:
        raise OtaError("schema", "bound must be true or false")
    devs = d.get("devices")
    if d["bound"]:
        if not isinstance(devs, list) or not 1 <= len(devs) <= MAX_DEVICES:
            raise OtaError("schema", "a bound manifest names 1..%d devices" % MAX_DEVICES)
        from firmware.devid import why_not  # the one device id form (not config's 6 KB)
        for dev in devs:
            why = why_not(dev)
            if why is not None:
                raise OtaError("schema", "devices: " + why)
            if devs.count(dev) > 1:
                raise OtaError("schema", "devices: %r is listed twice" % (dev,))
    elif devs is not None:
        raise OtaError("schema", "devices is only for a bound manifest")
    files = d.get("files")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
        raise OtaError("schema", "files must list 1..%d files" % MAX_FILES)
    # a duplicate path is found by each path's hash, then the earlier entry
    # with that hash parsed again: no set of 64 path strings (4 KB) on a
    # deployed node's heap while it samples
    seen = [-1] * len(files)
    total = 0
    app = False
    for i, f in enumerate(_each(files, body)):
        if not isinstance(f, dict) or len(f) != 3:
            raise OtaError("schema", "each file is {path, size, sha256}")
        p = f.get("path")
        check_path(p)
        h = hash(p) & 0x3FFFFFFF  # a small int: no allocation
        if h in seen:
            for j in range(i):
                if seen[j] == h and _path_at(files[j], body) == p:
                    raise OtaError("path", "%r listed twice" % p)
        seen[i] = h
        app = app or p in ("firmware/app.mpy", "firmware/app.py")
        size = _int(f, "size", 0, d["max_file"])
        total += size
        _hex64(f.get("sha256"), p)
    if total > d["max_total"]:
        raise OtaError("size", "files total %d bytes, over max_total" % total)
    if not app:
        raise OtaError("schema", "bundle has no firmware/app: the slot would not boot")
    img = d.get("image")
    if img is not None:
        if not isinstance(img, dict) or len(img) != 2:
            raise OtaError("schema", "image is {size, sha256}")
        _int(img, "size", 1, IMAGE_MAX)
        _hex64(img.get("sha256"), "image")


def check_device(m, device_id):
    """A bound manifest must name `device_id` in its signed part, whatever
    the update server vouches for."""
    if m.bound and device_id not in m.devices:
        raise OtaError("binding", "bundle is bound to %s, not to this device %s"
                       % (",".join(m.devices[:4]) + ("..." if len(m.devices) > 4 else ""),
                          device_id))


def check(m, hw, version, counter, now_s, floor_s=0, reverted=0):
    """Policy for a verified manifest against the running node: hardware
    model, newer version, security counter not below the node's, newer
    than the newest trial that failed its health check (version code
    `reverted`: otatrial.reverted(), so that bundle is refused until a newer
    one comes), not expired by the clock (or by the time floor when the clock
    is unset), and with a clock not made more than clock.SKEW_S in the
    future (such a `created` would drag the time floor past trusted time)."""
    if m.hw != hw:
        raise OtaError("hw", "bundle is for %r, this node is %r" % (m.hw, hw))
    if m.counter < counter:
        raise OtaError("rollback", "security counter %d below the node's %d" % (m.counter, counter))
    if m.version_code <= version:
        raise OtaError("downgrade", "version %s is not newer than the running one" % m.version)
    if m.version_code <= reverted:
        raise OtaError("reverted", "version %s is not newer than the update reverted after its "
                       "trial" % m.version)
    if m.expires <= m.created:
        raise OtaError("expired", "manifest expires before it was created")
    if now_s and m.created > now_s + SKEW_S:
        raise OtaError("time", "manifest created %d s in the future" % (m.created - now_s))
    t = now_s if now_s > floor_s else floor_s
    if m.expires <= t:
        raise OtaError("expired", "manifest expired (expires %d, now %d)" % (m.expires, t))
