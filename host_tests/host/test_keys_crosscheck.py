"""The firmware's HMAC-SHA256 / HKDF (lib/hmacsha, firmware/keystore) and
the host's (CPython hmac, the `cryptography` package's HKDF-Expand) agree
for any key, device and message: what the gateway and the provisioning
tool compute is what the node computes."""
import binascii
import hashlib
import hmac

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tools import hostshims
from tools.provision import keys

hostshims.install()


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=0, max_size=200), msg=st.binary(max_size=300))
def test_hmac_equals_cpython_for_any_key_length(key, msg):
    from hmacsha import HMAC
    assert HMAC(key).digest(msg) == hmac.new(key, msg, hashlib.sha256).digest()


@settings(max_examples=100, deadline=None)
@given(root=st.binary(min_size=32, max_size=32), uid=st.binary(min_size=6, max_size=6),
       msg=st.binary(max_size=200), nonce=st.binary(min_size=16, max_size=64))
def test_node_and_host_derive_the_same_keys(root, uid, msg, nonce):
    import simboard

    from firmware import keystore
    assume(any(root))  # an all-zero key is refused (test_keystore)
    simboard.new_board(uid=uid)
    dev = binascii.hexlify(uid).decode()
    keystore.install(root.hex(), 1)
    ks = keystore.load()
    sub = keys.subkeys(root, dev)
    assert ks.sign("telemetry", msg) == hmac.new(sub["telemetry"], msg, hashlib.sha256).digest()
    assert ks.sign("ota-bind", msg) == hmac.new(sub["ota-bind"], msg, hashlib.sha256).digest()
    assert ks.attest(nonce) == keys.attest_response(sub["attest"], dev, nonce)
    assert ks.broker_password() == keys.broker_password(sub["broker"])
