"""HMAC-SHA256 (RFC 2104), HKDF-Expand (RFC 5869) and a constant-time
compare, for MicroPython: the ESP32 firmware has hashlib.sha256 but no
hmac module, and hashlib objects cannot be copied, so the key pads are
kept instead of a keyed hash state.

    from hmacsha import HMAC, equal, hkdf_expand
    mac = HMAC(key)                      # pads computed once per key
    tag = mac.digest(b"header", payload) # 32 bytes over the concatenation
    ok = equal(tag, received)            # time does not depend on the data
    sub = hkdf_expand(root, b"label")    # 32-byte purpose key

Guarantees: results equal CPython's hmac/hashlib (host tests cross-check
them); equal() looks at every byte whatever the contents.
Non-guarantees: each digest() allocates two hash objects (~200 bytes on
the ESP32): use it per message, not per sample; the pads are key
material and live in RAM until wipe().
"""
import hashlib

from micropython import const

_BLOCK = const(64)
SIZE = const(32)


class HMAC:
    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        self._ipad = bytearray(_BLOCK)
        self._opad = bytearray(_BLOCK)
        for i in range(len(key)):
            self._ipad[i] = key[i]
            self._opad[i] = key[i]
        for i in range(_BLOCK):
            self._ipad[i] ^= 0x36
            self._opad[i] ^= 0x5C

    def digest(self, *parts):
        """HMAC over the concatenation of `parts` (bytes-like)."""
        inner = hashlib.sha256(self._ipad)
        for p in parts:
            inner.update(p)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()

    def wipe(self):
        """Overwrite the key material; the object is unusable afterwards."""
        for i in range(_BLOCK):
            self._ipad[i] = 0
            self._opad[i] = 0


def equal(a, b):
    """Constant-time comparison of two byte strings (the length is not
    secret: a tag has a fixed size)."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def hkdf_expand(prk, info, length=SIZE):
    """RFC 5869 HKDF-Expand. `prk` must already be a uniformly random key
    (the device key is), so the Extract step is skipped (RFC 5869 s3.3)."""
    if not 0 < length <= 255 * SIZE:
        raise ValueError("hkdf: length out of range")
    mac = HMAC(prk)
    out = b""
    t = b""
    n = 1
    while len(out) < length:
        t = mac.digest(t, info, bytes((n,)))
        out += t
        n += 1
    mac.wipe()
    return out[:length]
