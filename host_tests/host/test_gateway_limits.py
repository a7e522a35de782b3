"""What one login can cost the others (issue 19 §6): a flood is counted
but not stored and leaves other devices' frames untouched, the refusal log
stays small whatever arrives, values no measurement has are malformed,
authentic frames far behind the newest are stale, and the broker drops a
packet larger than the largest frame before the gateway sees it."""
import hashlib
import hmac
import json
import time

import paho.mqtt.client as mqtt
import pytest

from tools.broker import FRAME_MAX, MAX_PACKET, Broker
from tools.gateway.core import Gateway
from tools.gateway.limits import BURST, RATE, SEQ_WINDOW, RateLimiter, RefusalLog, SeqWindow
from tools.provision import keys as pkeys
from tools.provision.registry import Registry
from tools.provision.site import dev_site

from firmware import frames  # noqa: E402  (on the path through tools.gateway.core)

A, B = "240ac4000a0a", "240ac4000b0b"


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def world(tmp_path):
    reg = Registry(tmp_path / "reg.sqlite")
    subs = {}
    for d in (A, B):
        subs[d] = pkeys.subkeys(pkeys.new_root(), d)
        reg.begin(d, 1, subs[d], "esp32", False)
        reg.activate(d)
    reg.close()
    clock = Clock()
    gw = Gateway(tmp_path / "reg.sqlite", ":memory:",
                 limiter=RateLimiter(clock=clock), refusal_log=RefusalLog(clock=clock))
    gw.clock = lambda: 1800000000.0 + 20000  # arrival: frames carry 1800000000 + seq
    yield gw, subs, clock
    gw.close()


def frame(subs, dev, seq, kind="vitals", **kw):
    hdr = (bytes.fromhex(dev), seq, 1800000000 + seq, 5000, frames.T_WALL)
    if kind == "vitals":
        body = frames.vitals(hdr, kw.get("hr", 712), kw.get("sp", 968), 92, 0, [(4000, 830)])
    else:
        body = frames.security(hdr, kw["event"])
    return frames.seal(body, lambda b: hmac.new(subs[dev]["telemetry"], b,
                                                hashlib.sha256).digest())


def test_a_flood_from_one_login_is_counted_not_stored_and_others_pass(world):
    gw, subs, clock = world
    flood = [("vn/%s/tm" % A, b"junk %d" % i) for i in range(3000)]
    flood += [("vn/%s/tm" % A, frame(subs, A, 10_000 + i)) for i in range(100)]  # even genuine ones
    out = gw.handle_many(flood + [("vn/%s/tm" % B, frame(subs, B, 1))])
    assert out[-1] == "stored" and gw.vitals(B)["hr_x10"] == 712
    assert out.count("limited") == 3100 - BURST and gw.counts["limited"] == 3100 - BURST
    assert out.count("malformed") == BURST
    assert gw.store.max_seq(A) is None  # nothing of the flood stored
    # the refusal log got one row per (login, outcome), not thousands
    rows = gw.store.refusals()
    assert sorted((r["outcome"], r["device"]) for r in rows) == [("limited", A), ("malformed", A)]
    clock.t += 61  # the window ends: one row sums the rest
    gw.handle("vn/%s/tm" % B, frame(subs, B, 2))
    rows = gw.store.refusals()
    assert len(rows) == 4
    summed = {r["outcome"]: r["detail"] for r in rows if r["seq"] is None}
    assert summed["limited"].startswith("%d more limited refusal(s)" % (3100 - BURST - 1))
    assert summed["malformed"].startswith("%d more malformed" % (BURST - 1))
    # A's bucket refills at its rate: a node's steady frames pass again
    assert gw.handle("vn/%s/tm" % A, frame(subs, A, 20_000)) == "stored"


def test_a_full_outbox_after_an_outage_passes_the_limit(world):
    gw, subs, clock = world
    backlog = [("vn/%s/tm" % A, frame(subs, A, s)) for s in range(256)]  # MAX_FRAMES + RESERVE
    assert gw.handle_many(backlog) == ["stored"] * 256
    clock.t += 1
    assert gw.handle_many([("vn/%s/tm" % A, frame(subs, A, 300 + s))
                           for s in range(int(RATE))]) == ["stored"] * int(RATE)


def test_the_refusal_log_is_bounded_whatever_arrives(world, monkeypatch):
    gw, subs, clock = world
    monkeypatch.setattr(type(gw.store), "REFUSED_MAX", 50)
    for i in range(200):  # 200 logins, each a new window: 200 first rows
        gw.handle("vn/240ac4%06x/tm" % i, b"junk")
    assert len(gw.store.refusals()) == 50


def test_non_finite_and_out_of_range_values_are_malformed(world):
    gw, subs, _ = world
    topic = "vn/%s/tm" % A
    for i, ev in enumerate(['{"event": "x", "v": NaN}', '{"event": "x", "v": 1e999999}',
                            '{"event": "x", "v": -Infinity}', '{"event": "x", "v": 99999999999}',
                            '{"event": "x", "event": "y"}']):
        assert gw.handle(topic, frame(subs, A, i, kind="security", event=ev)) == "malformed", ev
    assert gw.handle(topic, frame(subs, A, 10, hr=4001)) == "malformed"
    assert gw.handle(topic, frame(subs, A, 11, sp=1001)) == "malformed"
    assert gw.handle(topic, frame(subs, A, 12, kind="security", event='{"event": "ok", "v": 1.5}')) \
        == "stored"
    assert gw.handle(topic, b"\x02" * (FRAME_MAX + 1)) == "malformed"
    for r in gw.rows(A):
        json.dumps(r, allow_nan=False, default=str)  # nothing non-finite was stored
    assert [r["seq"] for r in gw.rows(A)] == [12]


def test_sequence_window_accepts_reordering_and_refuses_the_far_past(world):
    gw, subs, _ = world
    topic = "vn/%s/tm" % A
    assert SEQ_WINDOW >= 256  # a full outbox (firmware/outbox.py MAX_FRAMES + RESERVE)
    assert gw.handle(topic, frame(subs, A, 5000)) == "stored"
    assert gw.handle(topic, frame(subs, A, 5000 - 200)) == "stored"  # late, within a full outbox
    assert gw.handle(topic, frame(subs, A, 5000 - SEQ_WINDOW)) == "stored"
    assert gw.handle(topic, frame(subs, A, 5000 - SEQ_WINDOW - 1)) == "stale"
    assert gw.handle(topic, frame(subs, A, 3)) == "stale"
    assert gw.handle(topic, frame(subs, A, 5000)) == "duplicate"
    # a restarted gateway knows the newest from the store
    w = SeqWindow()
    assert w.stale(A, 3, gw.store.max_seq) and not w.stale(A, 4990, gw.store.max_seq)


def test_the_broker_drops_a_packet_larger_than_the_largest_frame(tmp_path):
    site = dev_site(tmp_path / "site").parent
    b = Broker(tmp_path / "broker", site)
    sub = pkeys.subkeys(pkeys.new_root(), A)
    b.add_user(A, pkeys.broker_password(sub["broker"]))
    b.add_user("gateway", "gw")
    b.start()
    got = []

    def client(user, pw):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-%s" % user)
        c.username_pw_set(user, pw)
        c.tls_set(ca_certs=str(site / "ca.pem"))
        up = []
        c.on_connect = lambda cl, u, f, rc, p=None: up.append(rc)
        c.connect("localhost", b.port)
        c.loop_start()
        deadline = time.monotonic() + 10
        while not up:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return c
    try:
        gw = client("gateway", "gw")
        gw.on_message = lambda c, u, m: got.append(len(m.payload))
        gw.subscribe("vn/+/tm", qos=1)
        node = client(A, pkeys.broker_password(sub["broker"]))
        node.publish("vn/%s/tm" % A, b"\0" * FRAME_MAX, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while got != [FRAME_MAX]:  # the largest frame passes
            assert time.monotonic() < deadline, got
            time.sleep(0.01)
        node.loop_stop()
        node.disconnect()
        for size in (MAX_PACKET, 16 * 1024 * 1024):
            c = client(A, pkeys.broker_password(sub["broker"]))
            gone = []
            c.on_disconnect = lambda cl, u, f, rc, p=None, gone=gone: gone.append(rc)
            c.publish("vn/%s/tm" % A, b"\0" * size, qos=1)
            while not gone:  # the broker hangs up on the sender
                assert time.monotonic() < deadline + 20, size
                time.sleep(0.01)
            c.loop_stop()
        marker = client(A, pkeys.broker_password(sub["broker"]))
        marker.publish("vn/%s/tm" % A, b"marker", qos=1).wait_for_publish(5)
        while 6 not in got:
            assert time.monotonic() < deadline, got
            time.sleep(0.01)
        assert got == [FRAME_MAX, 6]  # neither oversize packet was delivered
        assert b.log().count("disconnected due to oversize packet") == 2
        for c in (gw, marker):
            c.loop_stop()
            c.disconnect()
    finally:
        b.stop()


def test_a_node_time_far_from_arrival_is_not_taken_as_measurement_time(world):
    from tools.gateway.core import TIME_AGE_S, TIME_SKEW_S
    gw, subs, _ = world
    gw.clock = lambda: 1800000000.0 + 40  # frame(seq) carries time 1800000000 + seq

    def stored(seq):
        assert gw.handle("vn/%s/tm" % A, frame(subs, A, seq)) == "stored"
        return [r for r in gw.rows(A) if r["seq"] == seq][0]["wall"]
    assert stored(40) and stored(40 + TIME_SKEW_S)  # on time, and at the skew's edge
    assert not stored(41 + TIME_SKEW_S)  # the future beyond the skew
    gw.clock = lambda: 1800000000.0 + 60 + TIME_AGE_S
    assert stored(60) and not stored(59)  # a week behind is taken; older is not
    assert gw.skewed == 2
    assert [r["outcome"] for r in gw.store.refusals()] == ["clock"]  # the first, then summed
