# nvsrec.py - a record in NVS that changes as a whole. Stage 0, like
# stage0.py: deployed compiled at the root (/nvsrec.mpy) or frozen, never in
# an app slot, because the boot and the keystore read their state through it.
"""A record of several values in ESP32 NVS that a power cut leaves either
old or new, never mixed.

    from nvsrec import Record
    r = Record(esp32.NVS("vn_ota"), "st", ">12i")
    vals = r.read()           # the tuple last written, or None: never written
    r.write(vals)             # ONE key write

ESP-IDF writes each NVS key to flash on its own when it is set; commit()
adds nothing (ports/esp32/esp32_nvs.c; docs/shims.md). Several set_*
calls are several writes, and a cut between two leaves a mix. So a record
is one blob, and two keys alternate: NAME + "0" and NAME + "1". Each holds
    u32 generation | payload (struct `fmt`) | 4-byte check
where the check is the first 4 bytes of SHA-256 over generation and payload.
write() puts generation + 1 into the key that does not hold the newest
record. read() takes the valid key with the newer generation. A write that
power loss cut, torn or half-written, fails its check, and the record
before it stands.
Guarantees: read() after any power cut returns the last record whose
write() returned, or the one write() was writing. Non-guarantee: the
record is not secret (NVS is plain flash unless flash and NVS encryption
are on).
"""
import hashlib
import struct

_GEN = ">I"


class Record:
    def __init__(self, nvs, name, fmt):
        self._nvs = nvs
        self._keys = (name + "0", name + "1")
        self._fmt = fmt
        self._size = 4 + struct.calcsize(fmt) + 4
        self._gen = None  # the newest valid generation, once read

    @staticmethod
    def _check(body):
        return hashlib.sha256(body).digest()[:4]

    def _load(self, key):
        """(generation, payload bytes) of one key, or None."""
        buf = bytearray(self._size)
        try:
            n = self._nvs.get_blob(key, buf)
        except OSError:
            return None
        if n != self._size:
            return None
        body = bytes(buf[:-4])
        if self._check(body) != bytes(buf[-4:]):
            return None  # torn, half-written or foreign: not a record
        return struct.unpack(_GEN, body[:4])[0], body[4:]

    def _newest(self):
        best = None
        for i in (0, 1):
            r = self._load(self._keys[i])
            if r is not None and (best is None or r[0] > best[0]):
                best = (r[0], r[1], i)
        return best

    def read(self):
        b = self._newest()
        if b is None:
            self._gen = None
            return None
        self._gen = b[0]
        return struct.unpack(self._fmt, b[1])

    def write(self, values):
        b = self._newest()
        gen = b[0] + 1 if b is not None else 1
        key = self._keys[1 - b[2]] if b is not None else self._keys[0]
        body = struct.pack(_GEN, gen) + struct.pack(self._fmt, *values)
        self._nvs.set_blob(key, body + self._check(body))
        self._nvs.commit()
        self._gen = gen

    def erase(self, filler):
        """Overwrite both keys with `filler` values, then erase them."""
        body = struct.pack(_GEN, 0) + struct.pack(self._fmt, *filler)
        for key in self._keys:
            try:
                self._nvs.set_blob(key, body + self._check(body))
                self._nvs.erase_key(key)
            except OSError:
                pass
        self._nvs.commit()
        self._gen = None


def encode(fmt, values, gen=1):
    """The blob write() stores for `values` (host tools that provision a
    node's NVS directly: tools/provision/image.py)."""
    body = struct.pack(_GEN, gen) + struct.pack(fmt, *values)
    return body + hashlib.sha256(body).digest()[:4]


def decode(fmt, blobs):
    """Host tools: the values of the newest valid record among `blobs`
    ({key: bytes} - a record's two keys as an NVS dump holds them), or None."""
    best = None
    for b in blobs:
        b = bytes(b)
        if len(b) != 4 + struct.calcsize(fmt) + 4:
            continue
        body = b[:-4]
        if hashlib.sha256(body).digest()[:4] != b[-4:]:
            continue
        gen = struct.unpack(_GEN, body[:4])[0]
        if best is None or gen > best[0]:
            best = (gen, struct.unpack(fmt, body[4:]))
    return best[1] if best else None
