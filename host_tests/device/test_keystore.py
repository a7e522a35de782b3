"""Keystore and its HMAC-SHA256: published test vectors, the NVS layout,
refuse-overwrite, rotation, power loss at the commit, wipe, and that no
object the keystore keeps holds the root key."""
import binascii

import simboard
from devtest import raises
from simflash import PowerLoss
from hmacsha import HMAC, equal, hkdf_expand

from firmware import keystore

ROOT = bytes(range(0xA0, 0xC0))
ROOT_HEX = binascii.hexlify(ROOT).decode()


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def test_hmac_sha256_matches_rfc4231_vectors():
    # RFC 4231 test cases 1, 2, 4 and 6 (a key longer than the block)
    assert HMAC(b"\x0b" * 20).digest(b"Hi There") == h(
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert HMAC(b"Jefe").digest(b"what do ya want ", b"for nothing?") == h(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert HMAC(bytes(range(1, 26))).digest(b"\xcd" * 50) == h(
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")
    assert HMAC(b"\xaa" * 131).digest(
        b"Test Using Larger Than Block-Size Key - Hash Key First") == h(
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_hkdf_expand_matches_rfc5869_case_1():
    prk = h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
    okm = hkdf_expand(prk, h("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm == h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                    "34007208d5b887185865")


def test_equal_compares_every_byte():
    a = bytes(32)
    for i in (0, 17, 31):
        b = bytearray(32)
        b[i] = 1
        assert not equal(a, b)
    assert equal(a, bytes(32))
    assert not equal(a, bytes(31))


def test_an_unprovisioned_node_has_no_keystore():
    assert keystore.load() is None
    st = keystore.status()
    assert st["provisioned"] is False and st["gen"] == 0 and st["lockdown"] is False
    assert st["device_id"] == binascii.hexlify(simboard.board.uid).decode()


def test_install_stores_the_key_in_nvs_committed_and_signs_with_it():
    keystore.install(ROOT_HEX, 1)
    raw = simboard.board.nvs["vn_key"]  # one record: key, generation, lock flag
    assert set(raw) == {"key0"} and ROOT in raw["key0"][1]
    ks = keystore.load()
    assert ks.gen == 1 and ks.device_id == keystore.device_id()
    tag = ks.sign("telemetry", b"frame ", b"body")
    assert len(tag) == 32
    assert ks.verify("telemetry", tag, b"frame body")
    bad = bytearray(tag)
    bad[5] ^= 1
    assert not ks.verify("telemetry", bytes(bad), b"frame body")
    assert not ks.verify("telemetry", tag, b"frame bodY")
    # purposes are separated: a telemetry tag is not an attest or broker tag
    assert ks.sign("broker", b"x") != ks.sign("telemetry", b"x") != ks.sign("ota-bind", b"x")
    # each sub-key is HKDF-Expand(root, label) and the root is not one of them
    sub = hkdf_expand(ROOT, ("vitalnode/v1/telemetry/" + ks.device_id).encode())
    assert tag == HMAC(sub).digest(b"frame body")


def _byte_strings(obj, seen, depth=0):
    """Every bytes/bytearray reachable from obj's attributes."""
    if depth > 4 or id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, (bytes, bytearray)):
        return [bytes(obj)]
    if isinstance(obj, str):
        return [obj.encode()]
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _byte_strings(k, seen, depth + 1) + _byte_strings(v, seen, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _byte_strings(v, seen, depth + 1)
    elif hasattr(obj, "__dict__"):
        out += _byte_strings(obj.__dict__, seen, depth + 1)
    return out


def test_the_keystore_keeps_no_copy_of_the_root_key():
    keystore.install(ROOT_HEX, 3)
    ks = keystore.load()
    held = _byte_strings(ks, set())
    assert held  # it does hold the derived pads
    hexroot = ROOT_HEX.encode()
    for b in held:
        assert ROOT not in b and hexroot not in b
    assert ROOT_HEX not in repr(ks) and "gen 3" in repr(ks)
    assert ROOT_HEX not in str(keystore.status())


def test_install_refuses_to_replace_a_key_unless_told_and_rotation_changes_tags():
    keystore.install(ROOT_HEX, 1)
    tag1 = keystore.load().sign("telemetry", b"m")
    e = raises(ValueError, keystore.install, "11" * 32, 2)
    assert "already installed" in str(e)
    assert keystore.load().sign("telemetry", b"m") == tag1  # untouched
    keystore.install("11" * 32, 2, replace=True)
    ks = keystore.load()
    assert ks.gen == 2 and ks.sign("telemetry", b"m") != tag1


def test_install_checks_its_arguments():
    assert "hex digits" in str(raises(ValueError, keystore.install, "ab" * 31, 1))
    assert raises(ValueError, keystore.install, "zz" * 32, 1)
    assert "gen" in str(raises(ValueError, keystore.install, ROOT_HEX, 0))
    assert "all-zero" in str(raises(ValueError, keystore.install, "00" * 32, 1))
    assert keystore.load() is None


def test_power_lost_at_any_nvs_write_of_an_install_leaves_the_old_key_or_the_new():
    b = simboard.board
    start = b.faults.ops
    keystore.install(ROOT_HEX, 1, lockdown=True)
    n = b.faults.ops - start
    assert n >= 1
    for k in range(1, n + 1):
        b = simboard.new_board()
        b.faults.arm(k)
        raises(PowerLoss, keystore.install, ROOT_HEX, 1, True)
        b.power_cycle()
        assert keystore.load() is None and not keystore.locked()  # still unprovisioned
    # a rotation cut anywhere: the old key with its flags, or the new with its own
    b = simboard.new_board()
    keystore.install(ROOT_HEX, 1, lockdown=False)
    tag = keystore.load().sign("telemetry", b"m")
    start = b.faults.ops
    keystore.install("22" * 32, 2, True, True)
    n = b.faults.ops - start
    for k in range(1, n + 1):
        b = simboard.new_board()
        keystore.install(ROOT_HEX, 1, lockdown=False)
        b.faults.arm(k)
        raises(PowerLoss, keystore.install, "22" * 32, 2, True, True)
        b.power_cycle()
        ks = keystore.load()
        assert (ks.gen, keystore.locked(), ks.sign("telemetry", b"m") == tag) == (1, False, True)


def test_wipe_erases_key_and_lock_flag():
    keystore.install(ROOT_HEX, 4, lockdown=True)
    assert keystore.locked() and keystore.status()["lockdown"]
    keystore.wipe()
    assert keystore.load() is None and not keystore.locked()
    assert simboard.board.nvs["vn_key"] == {}  # both record keys overwritten, then erased


def test_attest_answers_a_nonce_and_checks_its_size():
    keystore.install(ROOT_HEX, 1)
    ks = keystore.load()
    n1, n2 = b"\x01" * 32, b"\x02" * 32
    assert ks.attest(n1) != ks.attest(n2)
    assert ks.attest(n1) == keystore.load().attest(n1)
    assert raises(ValueError, ks.attest, b"short")
    assert raises(ValueError, ks.attest, bytes(65))


def test_broker_password_is_derived_and_stable():
    keystore.install(ROOT_HEX, 1)
    pw = keystore.load().broker_password()
    assert len(pw) == 64 and ROOT_HEX not in pw
    assert pw == keystore.load().broker_password()
