"""Telemetry through a real mosquitto (TLS with a test CA made here, per-device
passwords, ACL) to the gateway: the node's uplink on CPython and on the
MicroPython unix port (real socket and ssl), the ACL walls, and the
gateway's refusals of forged, replayed and revoked-device frames; FHIR R4
output validates."""
import json
import time

import paho.mqtt.client as mqtt
import pytest

from tools import hostshims
from tools.broker import Broker
from tools.gateway.core import Gateway
from tools.gateway.mqtt import Subscriber
from tools.vm import launch
from tools.provision import keys as pkeys
from tools.provision.registry import Registry
from tools.provision.site import dev_site

hostshims.install()
import simboard  # noqa: E402

from firmware import frames, keystore, outbox, storage  # noqa: E402
from firmware.seqno import SeqNo  # noqa: E402
from firmware.telemetry import Telemetry  # noqa: E402
from firmware.uplink import Uplink  # noqa: E402

DEVS = ("240ac4000001", "240ac4000002", "240ac4000003", "240ac4000004")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tel")
    site = dev_site(tmp / "site").parent
    reg = Registry(tmp / "reg.sqlite")
    b = Broker(tmp / "broker", site)
    roots = {}
    for dev in DEVS:
        root = pkeys.new_root()
        sub = pkeys.subkeys(root, dev)
        reg.begin(dev, 1, sub, "esp32", False)
        reg.activate(dev)
        roots[dev] = root
        b.add_user(dev, pkeys.broker_password(sub["broker"]))
    b.add_user("gateway", "gw-secret")
    b.add_user("operator", "op-secret")
    b.start()
    gw = Gateway(tmp / "reg.sqlite", tmp / "gw.sqlite", clock=lambda: 1800000000 + 60)  # the nodes' time
    sub = Subscriber(gw, "localhost", b.port, site / "ca.pem", "gw-secret").start()
    yield {"tmp": tmp, "site": site, "broker": b, "gw": gw, "sub": sub, "roots": roots, "reg": reg}
    sub.stop()
    b.stop()


def _node(world, dev):
    brd = simboard.new_board(uid=bytes.fromhex(dev))
    storage.use(brd.fs)
    keystore.install(world["roots"][dev].hex(), 1)
    ks = keystore.load()
    import esp32
    box = outbox.Outbox()
    tm = Telemetry(ks, box, SeqNo(esp32.NVS("vn_tel")), 6000, clock=lambda: 1800000000)
    up = Uplink(dev, {"host": "localhost", "port": world["broker"].port}, world["broker"].ca_pem,
                ks.broker_password())
    return tm, up, box


def _wait(cond, timeout=10):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def _client(world, user, password):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-%s-%d" % (user, time.monotonic_ns()))
    c.username_pw_set(user, password)
    c.tls_set(ca_certs=str(world["site"] / "ca.pem"))
    return c


def test_frames_from_a_node_arrive_verified_once_and_export_as_fhir(world):
    gw = world["gw"]
    tm, up, box = _node(world, DEVS[0])
    for i in range(3):
        hdr = tm._hdr()
        tm._put(frames.VITALS, hdr, frames.vitals(hdr, 700 + i, 970, 90, 0, [(1000 * i, 800)], valid=3))
    tm.alert(3, True, 4000, type("D", (), {"hr_x10": 0, "spo2_x10": 880, "hr_valid": False,
                                           "spo2_valid": True})())
    up.service(box)
    assert up.up and box.depth == 0
    _wait(lambda: len(gw.rows(device=DEVS[0])) == 4)
    rows = gw.rows(device=DEVS[0])
    assert [r["kind"] for r in rows] == ["vitals", "vitals", "vitals", "alert"]
    assert rows[3]["alert"] == 3 and rows[3]["spo2_x10"] == 880
    from tools.gateway.fhir import to_bundle
    b = to_bundle(rows)  # no patient assigned: device-only Observations, the Device included
    res = [e["resource"] for e in b["entry"]]
    codes = [c["code"] for r in res if r["resourceType"] == "Observation" for c in r["code"]["coding"]]
    assert codes.count("8867-4") == 3 and codes.count("59408-5") == 3 and codes.count("2708-6") == 3
    dev_entry = [e for e in b["entry"] if e["resource"]["resourceType"] == "Device"]
    assert len(dev_entry) == 1 and dev_entry[0]["resource"]["identifier"][0]["value"] == DEVS[0]
    hr = [e for e in b["entry"] if e["resource"]["resourceType"] == "Observation"][0]
    assert hr["resource"]["valueQuantity"]["code"] == "/min"
    assert hr["resource"]["device"]["reference"] == dev_entry[0]["fullUrl"]
    assert hr["resource"]["subject"]["reference"] == dev_entry[0]["fullUrl"]
    assert hr["resource"]["effectiveDateTime"] == "2027-01-15T08:00:00Z"  # the node's clock
    assert hr["request"] == {"method": "PUT", "url": "Observation?identifier=urn:vitalnode:"
                             "observation|%s-%d-hr" % (DEVS[0], rows[0]["seq"])}
    up.close()


def test_the_gateway_refuses_forged_replayed_and_revoked_frames(world):
    gw = world["gw"]
    tm, up, box = _node(world, DEVS[1])
    hdr = tm._hdr()
    tm._put(frames.VITALS, hdr, frames.vitals(hdr, 650, 960, 80, 0, []))
    frame = box.read(box.oldest())
    topic = "vn/%s/tm" % DEVS[1]
    assert gw.handle(topic, frame) == "stored"
    assert gw.handle(topic, frame) == "duplicate"  # replayed
    forged = bytearray(frame)
    forged[frames.HEAD_LEN] ^= 1  # hr changed, tag kept
    assert gw.handle(topic, bytes(forged)) == "forged"
    other = frames.seal(frames.vitals((bytes.fromhex(DEVS[1]), 999999, 1, 1, 0), 600, 0, 0, 0, []),
                        lambda body: b"\x00" * 32)
    assert gw.handle(topic, other) == "forged"
    assert gw.handle("vn/%s/tm" % DEVS[0], frame) == "topic"  # another node's topic
    assert gw.handle(topic, b"\x01\x02garbage") == "malformed"
    world["reg"].revoke(DEVS[1], "lost")
    hdr = tm._hdr()
    tm._put(frames.VITALS, hdr, frames.vitals(hdr, 651, 960, 80, 0, []))
    box.ack(box.oldest())
    assert gw.handle(topic, box.read(box.oldest())) == "revoked"
    assert len(gw.rows(device=DEVS[1])) == 1


def test_the_broker_acl_keeps_each_party_in_its_lane(world):
    b = world["broker"]
    seen = []
    spy = _client(world, "gateway", "gw-secret")
    spy.on_message = lambda c, u, m: seen.append(m.topic)
    spy.connect("localhost", b.port)
    spy.subscribe("vn/#", qos=1)
    spy.loop_start()
    time.sleep(0.3)
    sub0 = pkeys.subkeys(world["roots"][DEVS[0]], DEVS[0])
    node0 = _client(world, DEVS[0], pkeys.broker_password(sub0["broker"]))
    node0.connect("localhost", b.port)
    node0.loop_start()
    node0.publish("vn/%s/tm" % DEVS[1], b"impostor", qos=1).wait_for_publish(5)  # someone else's topic
    node0.publish("vn/%s/tm" % DEVS[0], b"own", qos=1).wait_for_publish(5)
    gwc = _client(world, "gateway", "gw-secret")
    gwc.connect("localhost", b.port)
    gwc.loop_start()
    gwc.publish("vn/%s/cmd" % DEVS[0], b"gateway may only read", qos=1).wait_for_publish(5)
    _wait(lambda: "vn/%s/tm" % DEVS[0] in seen)
    time.sleep(0.3)
    assert "vn/%s/tm" % DEVS[1] not in seen and "vn/%s/cmd" % DEVS[0] not in seen
    # acknowledgements free a node's flash: only the gateway may write them,
    # and only the node they are for may read them
    acks = []
    node0.on_message = lambda c, u, m: acks.append(m.payload)
    node0.subscribe([("vn/%s/ack" % DEVS[0], 1), ("vn/%s/ack" % DEVS[1], 1)])
    sub1 = pkeys.subkeys(world["roots"][DEVS[1]], DEVS[1])
    node1 = _client(world, DEVS[1], pkeys.broker_password(sub1["broker"]))
    node1.connect("localhost", b.port)
    node1.loop_start()
    time.sleep(0.3)
    node1.publish("vn/%s/ack" % DEVS[0], b"node 1 frees node 0's flash", qos=1).wait_for_publish(5)
    node0.publish("vn/%s/ack" % DEVS[0], b"a node acks itself", qos=1).wait_for_publish(5)
    gwc.publish("vn/%s/ack" % DEVS[1], b"for node 1", qos=1).wait_for_publish(5)
    gwc.publish("vn/%s/ack" % DEVS[0], b"gateway ack", qos=1).wait_for_publish(5)
    _wait(lambda: acks)
    time.sleep(0.3)
    assert acks == [b"gateway ack"]
    node1.loop_stop()
    node1.disconnect()
    for c in (node0, gwc, spy):
        c.loop_stop()
        c.disconnect()
    # a wrong password and an anonymous client are refused at CONNECT
    for user, pw in ((DEVS[0], "guess"), (None, None)):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user:
            c.username_pw_set(user, pw)
        c.tls_set(ca_certs=str(world["site"] / "ca.pem"))
        rc = []
        c.on_connect = lambda cl, u, f, reason, p=None, rc=rc: rc.append(reason)
        c.connect("localhost", b.port)
        c.loop_start()
        _wait(lambda rc=rc: rc)
        c.loop_stop()
        assert rc[0].is_failure


@pytest.mark.parametrize("vm", ["unix", "frozen"])
def test_the_uplink_runs_on_the_chips_micropython_over_real_tls(world, tmp_path, vm):
    """umqtt.simple (pinned) + netguard + real ssl (mbedtls) on MicroPython
    1.27 32-bit - the firmware as .mpy-able sources, and frozen into the
    binary by manifest.py (ssl too): frames sealed by the keystore on the VM
    arrive at the gateway and verify."""
    dev = DEVS[2] if vm == "unix" else DEVS[3]
    key_file = tmp_path / "root.hex"
    key_file.write_text(world["roots"][dev].hex())
    ca_file = world["site"] / "ca.pem"
    before = len(world["gw"].rows(device=dev))
    with launch.Run(vm, tests=None) as run:
        r = run.call("runner/uplink_node.py", [dev, key_file, ca_file, world["broker"].port, "5"],
                     timeout=120)
    assert "UPLINK-RESULT" in r.stdout, r.stdout + r.stderr
    res = json.loads(r.stdout.split("UPLINK-RESULT ", 1)[1])
    # the node's outbox empties only on the gateway's acknowledgements
    assert res["up"] and res["queued"] == 0 and res["published"] == 5 and res["acked"] == 5, res
    _wait(lambda: len(world["gw"].rows(device=dev)) == before + 5)
    assert [r["hr_x10"] for r in world["gw"].rows(device=dev)] == [600, 601, 602, 603, 604]
