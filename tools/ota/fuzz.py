"""Property/fuzz campaign on the node's manifest handling (run by
host_tests/host/test_ota_fuzz.py and reported by `make bench`).

Two families, both through the device code (firmware/otamanifest.py on
CPython with the shims):
- mutated envelopes: a valid signed manifest with bytes flipped, cut,
  inserted or overwritten - every one must be refused with OtaError (the
  signature covers every byte), never accepted, never another exception;
- hostile signed manifests: fields replaced by arbitrary JSON values and
  file lists with arbitrary paths/sizes, signed with the real key so they
  pass the signature and reach the schema and policy rules - each must be
  refused with OtaError or, if accepted, meet an independent statement of
  the rules (paths, sizes, types) written here, not in the device code.
"""
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import hostshims

MUTATED = 8000
HOSTILE = 2000
_PATH = re.compile(r"^(firmware|lib)(/[A-Za-z0-9_-][A-Za-z0-9_.-]*){1,2}$")


def _setup():
    hostshims.install()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    from firmware import otamanifest
    from tools.ota.bundle import PSS
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    n = key.public_key().public_numbers().n

    def envelope(man):
        body = json.dumps(man).encode() if not isinstance(man, bytes) else man
        return otamanifest.MAGIC + key.sign(otamanifest.MAGIC + body, PSS, hashes.SHA256()) + body
    return otamanifest, n, envelope


def _valid():
    return {"format": 1, "product": "vitalnode", "hw": "vitalnode-esp32", "version": "1.2.3",
            "counter": 4, "created": 1790000000, "expires": 1890000000, "max_file": 4096,
            "max_total": 8192, "bound": False,
            "files": [{"path": "firmware/app.mpy", "size": 100, "sha256": "a" * 64},
                      {"path": "lib/qrs.mpy", "size": 200, "sha256": "b" * 64}]}


_json = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) |
                     st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=8)
_paths = st.one_of(st.text(max_size=70), st.sampled_from([
    "../boot.py", "firmware/../../boot.py", "/firmware/app.mpy", "lib/./x.mpy", "lib\\x.mpy",
    "lib/x.mpy\x00.py", "firmware/app.mpy/", "lib/ü.mpy", "lib/a/b/c.mpy", "data/x.mpy"]))


def _accepted_ok(d, m):
    """Independent statement of what may be accepted."""
    assert type(d["counter"]) is int and 0 <= d["counter"] < 2 ** 31
    assert re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,3}", d["version"])
    total = 0
    for f in d["files"]:
        assert _PATH.match(f["path"]) and ".." not in f["path"].split("/"), f["path"]
        assert f["path"].endswith((".mpy", ".py", ".json"))
        assert type(f["size"]) is int and 0 <= f["size"] <= d["max_file"] <= 262144
        total += f["size"]
    assert total <= d["max_total"] <= 393216
    assert list(m.each_file()) == d["files"]


def run(mutated=MUTATED, hostile=HOSTILE):
    """Run both families; returns the number of cases run."""
    otamanifest, n, envelope = _setup()
    good = envelope(_valid())
    count = [0, 0]

    @settings(max_examples=mutated, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def mutate(data):
        env = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            op = data.draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
            i = data.draw(st.integers(0, max(0, len(env) - 1)))
            if op == "flip":
                env[i] ^= 1 << data.draw(st.integers(0, 7))
            elif op == "cut":
                del env[i:i + data.draw(st.integers(1, 400))]
            elif op == "insert":
                env[i:i] = data.draw(st.binary(min_size=1, max_size=64))
            else:
                b = data.draw(st.binary(min_size=1, max_size=64))
                env[i:i + len(b)] = b
        count[0] += 1
        if bytes(env) == good:
            return
        try:
            otamanifest.open_signed(bytes(env), n)
        except otamanifest.OtaError:
            return
        raise AssertionError("a mutated envelope was accepted")

    @settings(max_examples=hostile, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def hostile_signed(data):
        d = _valid()
        for k in data.draw(st.lists(st.sampled_from(sorted(d) + ["extra"]), max_size=3)):
            d[k] = data.draw(_json)
        if data.draw(st.booleans()):
            d["files"] = data.draw(st.lists(st.fixed_dictionaries({
                "path": _paths, "size": st.integers(-5, 300000),
                "sha256": st.sampled_from(["a" * 64, "A" * 64, "a" * 63, ""])}), max_size=5))
        count[1] += 1
        try:
            m = otamanifest.open_signed(envelope(d), n)
        except otamanifest.OtaError:
            return
        _accepted_ok(d, m)

    mutate()
    hostile_signed()
    return count[0] + count[1]
