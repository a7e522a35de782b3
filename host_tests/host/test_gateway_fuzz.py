"""The gateway's decoder and checks under 10,000 hostile payloads: random
bytes and mutations of a genuine frame (bit flips, truncation, extension,
splices, header fields rewritten). Every one gets a named outcome; none
raises; none is stored unless it is byte-identical to the genuine frame."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.gateway.core import OUTCOMES, Gateway
from tools.provision import keys as pkeys
from tools.provision.registry import Registry

DEV = "240ac40fa22e"
CASES = {"n": 0}


def _setup(tmp):
    from firmware import frames
    root = pkeys.new_root()
    sub = pkeys.subkeys(root, DEV)
    reg = Registry(tmp / "reg.sqlite")
    reg.begin(DEV, 1, sub, "esp32", False)
    reg.activate(DEV)
    import hashlib
    import hmac
    hdr = (bytes.fromhex(DEV), 41, 1800000000, 5000, frames.T_WALL)
    body = frames.vitals(hdr, 712, 968, 92, 0, [(4000, 830), (4830, 830)])
    good = frames.seal(body, lambda b: hmac.new(sub["telemetry"], b, hashlib.sha256).digest())
    from tools.gateway.limits import RateLimiter
    # every payload reaches the decoder: no rate limit here (test_gateway_limits has it)
    return Gateway(tmp / "reg.sqlite", ":memory:", limiter=RateLimiter(burst=10 ** 9)), good


def _mutate(good, data):
    b = bytearray(good)
    op = data.draw(st.sampled_from(["flip", "cut", "extend", "splice", "field"]))
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "cut":
        b = b[:data.draw(st.integers(0, len(b) - 1))]
    elif op == "extend":
        b += data.draw(st.binary(min_size=1, max_size=64))
    elif op == "splice":
        i = data.draw(st.integers(0, len(b)))
        b = b[:i] + data.draw(st.binary(max_size=40)) + b[i:]
    else:  # a header or payload field rewritten to an edge value
        i = data.draw(st.integers(0, 29))
        b[i] = data.draw(st.sampled_from([0, 1, 2, 4, 5, 0x7F, 0x80, 0xFF]))
    return bytes(b)


def test_ten_thousand_hostile_payloads_get_a_named_outcome_and_none_is_forged_in(tmp_path):
    gw, good = _setup(tmp_path)
    topic = "vn/%s/tm" % DEV

    @settings(max_examples=5000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=600))
    def random_bytes(payload):
        CASES["n"] += 1
        out = gw.handle(topic, payload)
        assert out in OUTCOMES and out != "stored"

    @settings(max_examples=5000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def mutated(data):
        CASES["n"] += 1
        m = _mutate(good, data)
        out = gw.handle(topic, m)
        assert out in OUTCOMES
        assert out != "stored" or m == good

    random_bytes()
    mutated()
    assert CASES["n"] >= 10000
    assert gw.counts["malformed"] > 0 and gw.counts["forged"] > 0
    assert len(gw.rows()) <= 1  # at most the genuine frame, once
