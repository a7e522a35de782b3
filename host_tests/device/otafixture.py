"""OTA test fixtures for device tests (all three runtimes): two throwaway
RSA-3072 test keys, a PSS signer written from RFC 8017 9.1.1 (the host
tests check it against `cryptography`), a bundle builder and an in-memory
update source. Test keys only: nothing here signs a real update.
"""
import hashlib
import json

import rsapss
from firmware import otamanifest

_N = (
    "cf6f2b7c8e59bda470b745e14e92fc65a1b0c22d631e63c0dddd3854d30f62fc6b42ff57e51946a812027a57c30c4eb7"
    "a91b63f1814774ea2f586453514ffc7e4ac7cbd0ff1378f746ad57ae25f499016ca8ff15728d7f540e188beef527b3a1"
    "b5c190170589780c71a696338004edb713844d439bcb8660448d10437bda72680fe8ade6476e5d1d913ff7cb65b94370"
    "87ddbbba8e7b1c5c6f9ce6d03bb38b121276e6669a1ad68cd47b29bdccfb5efdfcf6033a02524cf992fdc64450be5dd1"
    "72b088866a3524695deceda652384687c4a1821ea1a319ae15a3f60f4e4dbeeec8e14b50ff4c4b12c6562b7e01901ef2"
    "8821d19c4ab1d3041f22388deaebbe3fa6731700ced008df5956aa55e3ecf0939128ed641713d4aa943997a1a00625a8"
    "e18c7950bdb2d6271f7a8891f6328bb7791951b19e753c96949b96a4fe127d8cbc50204636f63dc135d816fe0bdcb935"
    "e71f95e1db606ed82545025b2ce5308d7ffe83c2b221b9e1853dc2d0d4b8ee9d3c92cb31517c33bd42b741bfc178f6eb"
)
_D = (
    "36d9b51c8b01a4d9622abc322f1643e255e688f9fa6f333e710c49947878e59a4c7c9b4b711b8568f4d62de69dff57a3"
    "4df69daf6319738b67388ed2cf3a00d09e52858cfe9df60b20e7be3b20f3343041bcd032aa274b477d30b573dae48425"
    "db0b53601b093632c82c9e2401128c8f2ffc7877cbaefe19df969379dcbaaf2ce0240d33caa89ebbae48456c45ba3ee0"
    "7734c52ab7f94acf107e633425cd3c956b4780761a02c5bfd881b6d066ef0337d3177453f7002f35814e548a84f54996"
    "1a3b2994e4232d9c8ae41b4cba3fb16980b15efd3504d1a7a10e5b1ec4478a450843bf9d7b8dd62eaf3ced33a8168e4b"
    "8e49f04abde2fdae6e1dfeecc6d087667d641653fdf79618a6ee6269b9becdf5fe3164dfe13b0e4546e7f04fff0bda38"
    "c873bf6c8180dc85026dea3c3aafe7f1d1b6f574fd8a5549c4586207ecbc57681de2f3c2bf367ca641daa7b499d4516a"
    "756c9d5b95a41440fbde806330bc12132baae0172ad9dd181197f7666003d689f6342909c901f0cea353b3fcf447dcfd"
)
_OTHER_N = (
    "a7cfd574fcedfd2da30f76001aecaa366aa1a749f3d74a3f90910ca8bb5f3451ac74ed9462bf4de34ed84848baed4192"
    "d7c1e48c157d69d70503592973460073d63401324f0679734975992a328cae91b37f6befc3e2c23d9757933abaa59312"
    "e36439325aaad8f7e3dcb2e6f86bfa7f8cd2b39fa4356d4d3716c8dc0795a987bd23ba1b22c84d0775de4358ec630d4c"
    "048d9d7cf3ad2325c83c685bdef8668b852070929fac0b3329f8da25ad1a0b35267eb1f1df4f04d91a9c062561940b50"
    "ca06bebf767637f00167507dac68f9430c96a77d38beff5d359d5d28e9910e1076dfa4f88b5df636a02925f36ac97f65"
    "ad0518e63f07b21aa14dc90a1e1aa4eeae26c7edce51b791d3e865905955bbe637ae63a334b50f9997587b9abe1f565f"
    "15ca7adaa5704bc8a21e22c915ca977f1264770661f0c3a26d7b50d0ba3f344dbfc4fb685dff625fb7a7286ccfba32a5"
    "170f53c38de95256962fceb852778aabb056fcf921a94e93bf05deba802dbe4cc24674e740a79ad8d7be6bb59283a377"
)
_OTHER_D = (
    "1878a9631f034199671ef91138dbec5275284fb1ec1a281caee3481a4f00aa2b82dfa649ae40c185f5587aea08405300"
    "abeffd7924251ecb19530cac8bbfd88f0bdc9794138c1927e3bd7f7174dfa9115c40a7a7d643fa196b397d21e25804e3"
    "8b3f714bd386f88ee5aea8742023f6eaa4c99122259b18ee5aab3aed4339e2f8056ff152c5b6b9eced9654f1e1beec10"
    "7ad57ff2d9c214cf0cad2a76c3442c080a88d981b841297cf390f396ecf0505416e200e709ae874175aced04847f474a"
    "ead3bd43d767a29424fe5486b2555a564d316b5bf41d00705ddb75114afdcee26cfb63da832dc00eded331f439f91875"
    "f5126eb140a03f7704dd08d2b3aedda803d2530811817be5092fd3587d6e25eba762273740ae146e69acdba555d95f2b"
    "aa44a2b270d372a18437a8116b7337d803286cf1313736d10bd51c12bb630854014d693f5eb4cc663be7be7c4a5b7821"
    "aad5565e5a7d129b20fe7df36493e4cdab76f45ffba5599ed7b9922ba8979bedae8ba6ce581f689557815905a2558a09"
)


def _int(parts):
    return int("".join(parts), 16)


N = _int(_N)
D = _int(_D)
OTHER_N = _int(_OTHER_N)
OTHER_D = _int(_OTHER_D)


_signed = {}  # (msg, n) -> signature: the same manifest is signed once per run


def sign(msg, n=N, d=D):
    """RSASSA-PSS-SIGN, SHA-256, MGF1-SHA256, 32-byte salt (derived from
    the message so fixtures are repeatable)."""
    key = (msg, n)
    if key not in _signed:
        _signed[key] = _sign(msg, n, d)
    return _signed[key]


def _sign(msg, n, d):
    m_hash = hashlib.sha256(msg).digest()
    salt = hashlib.sha256(b"test-salt" + msg).digest()
    em_len = 384
    h = hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest()
    db = bytearray(em_len - 32 - 32 - 2) + b"\x01" + salt
    mask = rsapss.mgf1(h, len(db))
    for i in range(len(db)):
        db[i] ^= mask[i]
    db[0] &= 0x7F  # emBits = 3071
    em = bytes(db) + h + b"\xbc"
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(384, "big")


def sha_hex(b):
    import binascii
    return binascii.hexlify(hashlib.sha256(b).digest()).decode()


APP = b"print('app v2')\n"


def manifest(content=None, **kw):
    """A manifest dict for `content` {path: bytes}, policy-valid by default;
    keyword arguments replace fields."""
    content = {"firmware/app.py": APP} if content is None else content
    d = {"format": 1, "product": "vitalnode", "hw": "vitalnode-esp32", "version": "1.1.0",
         "counter": 1, "created": 1790000000, "expires": 1890000000, "max_file": 65536,
         "max_total": 262144, "bound": False,
         "files": [{"path": p, "size": len(b), "sha256": sha_hex(b)} for p, b in sorted(content.items())]}
    d.update(kw)
    return d


def envelope(man, n=N, d=D, raw=None):
    body = raw if raw is not None else json.dumps(man).encode()
    return otamanifest.MAGIC + sign(otamanifest.MAGIC + body, n, d) + body


class _Reader:
    def __init__(self, data, cap):
        self.data = data
        self.pos = 0
        self.cap = cap

    def readinto(self, buf):
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        pass


class MemSource:
    """An update server in memory: {name: bytes}; records what was asked.
    announce: {name: length} a reader states up front, as an HTTP
    Content-Length (httpget.Response.length), true or not."""

    def __init__(self, parts, announce=None):
        self.parts = parts
        self.asked = []
        self.announce = announce or {}

    def fetch(self, name, cap):
        self.asked.append(name)
        if name not in self.parts:
            raise OSError(2)  # what a 404 becomes
        r = _Reader(self.parts[name], cap)
        if name in self.announce:
            r.length = self.announce[name]
        return r


def app_image(seed=0, size=5000):
    """A valid ESP32 app image as esptool's elf2image lays one out (24-byte
    header, magic 0xE9, chip id 0, hash appended; one segment of `size`
    bytes; the 0xEF-XOR checksum at the end of a 16-byte block; SHA-256 of
    the lot). Test-built, so a host test has esptool read it back."""
    import struct
    data = bytes((i * 7 + seed) & 0xFF for i in range(size))
    hdr = bytes([0xE9, 1, 2, 0x20]) + struct.pack("<I", 0x40080000) + bytes(15) + b"\x01"
    body = hdr + struct.pack("<II", 0x40080000, len(data)) + data
    x = 0xEF
    for c in data:
        x ^= c
    body += bytes(15 - len(body) % 16) + bytes([x])
    return body + hashlib.sha256(body).digest()


def bundle(content=None, image=None, n=N, d=D, **kw):
    """A MemSource serving a signed bundle of `content` {path: bytes}."""
    content = {"firmware/app.py": APP} if content is None else content
    man = manifest(content, **kw)
    if image is not None:
        man["image"] = {"size": len(image), "sha256": sha_hex(image)}
    parts = {"manifest.vnm": envelope(man, n, d)}
    for p, b in content.items():
        parts["files/" + p] = b
    if image is not None:
        parts["image.bin"] = image
    return MemSource(parts)


def deployed(files, ver=1000000, ctr=1):
    """A node as `make deploy` leaves it: slot a holds `files` {path:
    bytes}, confirmed at version code `ver` with security counter `ctr`."""
    import stage0
    from firmware import storage
    for p, b in files.items():
        storage.makedirs("a/" + p[:p.rfind("/")])
        with storage.fs().open("a/" + p, "wb") as f:
            f.write(b)
    stage0.commit({"act": 0, "pend": -1, "ver": ver, "ctr": ctr})


def powerloss_sweep(setup, flow, check, first=1, step=1):
    """Cut power at flash op k of `flow` for every k (or every `step`-th
    from `first`): `setup()` builds a fresh node and returns its board,
    `flow(board)` runs the update, `check(board, k)` reboots and asserts
    the outcome. Returns the number of crash points exercised (the ops of
    one clean run)."""
    from simflash import PowerLoss
    b = setup()
    start = b.faults.ops
    flow(b)
    total = b.faults.ops - start
    for k in range(first, total + 1, step):
        b = setup()
        b.faults.arm(k)
        try:
            flow(b)
            raise AssertionError("flow finished although power was cut at op %d" % k)
        except PowerLoss:
            b.power_cycle()
        check(b, k)
    return total
