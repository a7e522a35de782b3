"""Keystore: the node's 256-bit secret in NVS, used only through derived,
purpose-separated sub-keys.

    from firmware import keystore
    ks = keystore.load()              # None: no key, the node is unprovisioned
    tag = ks.sign("telemetry", frame)
    ks.verify("telemetry", frame, tag)
    ks.attest(nonce)                  # provisioning challenge-response

Layout (NVS namespace "vn_key"): one record (nvsrec.Record "key", FMT:
the root key (32 bytes), the key generation (1, 2, ... on each rotation),
the production lock-down flag (firmware/lockdown.py)), written as one key,
so a power cut during provisioning leaves the old key with its flags or
the new one with its own - never a key installed without its lock flag
(ESP-IDF writes each NVS key on its own).

Sub-key for purpose P: HKDF-Expand(root, "vitalnode/v1/<P>/<device id>"),
so a sub-key is bound to its purpose and to this device; the provisioning
host derives the same ones (tools/provision/keys.py).

Guarantees: the root key is read once by load(), the sub-keys are derived
and the root buffer is zeroed; no function returns the root key or a
sub-key (broker_password() is a derived credential made to be sent to the
broker); verify() compares in constant time.
Non-guarantees: RAM is not protected from someone who can run code on
the node (hence lock-down); NVS is plain flash unless ESP32 flash and NVS
encryption are enabled (README "Security model").
"""
import binascii

import esp32
import machine
from hmacsha import HMAC, SIZE, equal, hkdf_expand
from micropython import const

NAMESPACE = "vn_key"
RECORD = "key"
FMT = ">32sii"  # root key, generation, lock flag
PURPOSES = ("telemetry", "broker", "ota-bind", "attest")
_LOCK_ON = const(1)
_NONCE_MIN = const(16)
_NONCE_MAX = const(64)


def device_id():
    """Hex of machine.unique_id() (the Wi-Fi MAC on the ESP32)."""
    return binascii.hexlify(machine.unique_id()).decode()


def _nvs():
    return esp32.NVS(NAMESPACE)


def _record():
    from nvsrec import Record
    return Record(_nvs(), RECORD, FMT)


def _read():
    """(key bytes, gen, lock) or None when no key is installed (an
    all-zero key is no key)."""
    vals = _record().read()
    if vals is None or not any(vals[0]):
        return None
    return vals


def status():
    """What the provisioning host may know: no secret in it."""
    r = _read()
    return {"device_id": device_id(), "provisioned": r is not None,
            "gen": r[1] if r else 0, "lockdown": bool(r and r[2] == _LOCK_ON)}


def locked():
    r = _read()
    return bool(r and r[2] == _LOCK_ON)


def install(key_hex, gen, lockdown=False, replace=False):
    """Store a new root key (hex, 64 digits) - the provisioning tool's
    call. Refuses to replace an existing key unless `replace`. One record
    write (all or nothing)."""
    if len(key_hex) != 2 * SIZE:
        raise ValueError("keystore: key must be %d hex digits" % (2 * SIZE))
    key = binascii.unhexlify(key_hex)
    if not any(key):
        raise ValueError("keystore: an all-zero key is not a key")
    if not isinstance(gen, int) or not 0 < gen < 0x7FFFFFFF:
        raise ValueError("keystore: gen must be a positive integer")
    if not replace and status()["provisioned"]:
        raise ValueError("keystore: a key is already installed (rotate to replace it)")
    _record().write((key, gen, _LOCK_ON if lockdown else 0))


def wipe():
    """Erase the key and the lock-down flag (recovery path): the node is
    unprovisioned afterwards and must be provisioned again (--rotate).
    Both record keys are overwritten with zeros before they are erased."""
    _record().erase((bytes(SIZE), 0, 0))


def encode(key, gen, lockdown=False):
    """Host tools: the NVS blob install() would store ({key: ["blob", hex]})."""
    from nvsrec import encode as enc
    return {RECORD + "0": ["blob", binascii.hexlify(
        enc(FMT, (key, gen, _LOCK_ON if lockdown else 0))).decode()]}


class Keystore:
    def __init__(self, root, gen):
        self.device_id = device_id()
        self.gen = gen
        self._macs = {}
        for p in PURPOSES:
            sub = hkdf_expand(root, ("vitalnode/v1/%s/%s" % (p, self.device_id)).encode())
            self._macs[p] = HMAC(sub)

    def sign(self, purpose, *parts):
        """HMAC-SHA256 tag (32 bytes) over the concatenated parts."""
        return self._macs[purpose].digest(*parts)

    def mac(self, purpose):
        """The purpose's hmacsha.HMAC, for a holder that needs only it (the
        telemetry link keeps it and lets the keystore go: the running node
        then holds neither the keystore's code nor the other sub-keys)."""
        return self._macs[purpose]

    def verify(self, purpose, tag, *parts):
        return equal(self._macs[purpose].digest(*parts), tag)

    def attest(self, nonce):
        """Challenge-response for the provisioning host: proves this node
        holds the key it was given without revealing it."""
        if not _NONCE_MIN <= len(nonce) <= _NONCE_MAX:
            raise ValueError("keystore: nonce must be %d-%d bytes" % (_NONCE_MIN, _NONCE_MAX))
        return self.sign("attest", b"attest", self.device_id.encode(), nonce)

    def broker_password(self):
        """The MQTT password: derived, so the broker never sees a key."""
        return binascii.hexlify(self.sign("broker", b"mqtt-password")).decode()

    def __repr__(self):
        return "<Keystore %s gen %d>" % (self.device_id, self.gen)


def load():
    """The node's keystore, or None when no key is installed."""
    r = _read()
    if r is None:
        return None
    root = bytearray(r[0])
    try:
        return Keystore(root, r[1])
    finally:
        for i in range(SIZE):
            root[i] = 0
