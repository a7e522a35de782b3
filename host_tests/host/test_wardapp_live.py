"""What the ward app shows from the frames the gateway stores: live tiles
over server-sent events (only to clinicians of that ward), alerts raised,
cleared, acknowledged and escalated to the notification hook, and trends
whose gaps stay gaps."""
import json
import queue
import time

import pytest

from host_tests.host.wardhelp import DEV_A, DEV_B, DEV_C, Events, WardRig, wait


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    w = WardRig(tmp_path_factory.mktemp("live"), escalate_after=1.0)
    yield w
    w.close()


class Stream(Events):
    """The tiles one user's /api/events stream delivers."""

    def __init__(self, w, role):
        self.s = w.login(role)
        super().__init__(w, self.s)

    def tile(self, dev, seq, timeout=5):
        return self.next("tile", dev, timeout, seq)

    def devices(self):
        out = set()
        while not self.q.empty():
            ev, d = self.q.get_nowait()
            if ev == "tile":
                out.add(d["device"])
        return out


def test_live_tiles_reach_only_the_wards_clinicians(ward):
    w = ward
    w3, w5 = Stream(w, "clinician"), Stream(w, "clinician-W5")
    try:
        t0 = time.monotonic()
        seq = w.vitals(DEV_A, hr=88, spo2=95)
        t = w3.tile(DEV_A, seq, timeout=1.0)  # within a second of the store
        assert time.monotonic() - t0 < 1.0
        assert (t["hr"], t["spo2"], t["hr_valid"], t["label"]) == (88, 95, True, "W3 bed 12")
        seq = w.vitals(DEV_C, hr=61, valid=2)  # HR not vouched for by the node
        t = w5.tile(DEV_C, seq, timeout=1.0)
        assert t["hr_valid"] is False and t["spo2_valid"] is True
        assert DEV_A not in w5.devices() and DEV_C not in w3.devices()
    finally:
        w3.close()
        w5.close()


def test_an_alert_is_raised_acknowledged_or_escalated_and_cleared(ward):
    w = ward
    s = w.login("clinician")
    n_hook = len(w.sink.got)
    w.seen(DEV_B, w.alert(DEV_B, "spo2_low"))
    w.seen(DEV_A, w.alert(DEV_A, "asystole"))
    got = {a["device"]: a for a in s.get(w.url + "/api/alerts").json()["alerts"]}
    assert got[DEV_A]["severity"] == "high" and got[DEV_A]["words"] == "Asystole"
    assert got[DEV_B]["severity"] == "medium" and got[DEV_B]["cleared_at"] is None
    # acknowledged at once: never escalates
    r = s.post(w.url + "/api/alerts/%s/ack" % got[DEV_B]["id"], json={"note": "probe moved"},
               headers={"X-CSRF-Token": s.csrf})
    assert r.status_code == 200
    # left alone past escalate_after (1 s): escalated, sent to the hook
    sent = wait(lambda: [p for p in w.sink.got[n_hook:] if p["device"] == DEV_A], timeout=5)
    assert sent[0]["alert"] == "asystole" and sent[0]["severity"] == "high" \
        and sent[0]["bed"] == "12" and "Doe" not in json.dumps(sent[0])
    got = {a["device"]: a for a in s.get(w.url + "/api/alerts").json()["alerts"]}
    assert got[DEV_A]["escalated"] and got[DEV_A]["acked_by"] is None
    assert got[DEV_B]["acked_by"] == "nurse.kim" and got[DEV_B]["note"] == "probe moved" \
        and not got[DEV_B]["escalated"]
    assert not [p for p in w.sink.got if p["device"] == DEV_B]
    wait(lambda: "sent: HTTP 204" == (w.app.feed.alerts(alert_id=got[DEV_A]["id"])[0]["notified"]))
    # the clear frame ends it; acknowledging twice keeps the first
    w.seen(DEV_A, w.alert(DEV_A, "asystole", raised=False))
    got = {a["device"]: a for a in s.get(w.url + "/api/alerts").json()["alerts"]}
    assert got[DEV_A]["cleared_at"] is not None
    r = s.post(w.url + "/api/alerts/%s/ack" % got[DEV_B]["id"], json={"note": "again"},
               headers={"X-CSRF-Token": s.csrf})
    assert r.json()["message"] == "already acknowledged"
    trail = [(e["actor"], e["action"], e["subject"]) for e in w.store.audit_log()]
    assert ("nurse.kim", "alert-ack", w.pb["id"]) in trail
    assert ("ward-app", "alert-escalate", w.pa["id"]) in trail


def test_the_trend_shows_gaps_as_gaps(ward):
    w = ward
    s = w.login("clinician")
    now = int(time.time())
    # 5 h of a frame a minute, with no frames at all for 40 min and 30 min
    # where the node did not vouch for HR (valid=2: SpO2 only)
    for m in range(300, 0, -1):
        t = now - m * 60
        if 200 >= m > 160:
            continue
        w.vitals(DEV_B, hr=70 + m % 5, spo2=96, valid=2 if 100 >= m > 70 else 3, t=t)
    w.seen(DEV_B, w.alert(DEV_B, "hr_low", t=now - 120 * 60))  # sent late: placed when measured
    tr = s.get(w.url + "/api/patient/%s/trend?span=6h" % w.pb["id"]).json()
    assert [a["t"] for a in tr["alerts"] if a["words"] == "Heart rate low"] == [now - 120 * 60]
    hr_gaps = [g for g in tr["gaps"] if g["what"] == "hr"]
    nodata = [g for g in hr_gaps if g["why"] == "no data" and g["to"] - g["from"] > 1800]
    invalid = [g for g in hr_gaps if g["why"] == "not valid"]
    assert any(g["from"] <= now - 199 * 60 and g["to"] >= now - 161 * 60 for g in nodata), hr_gaps
    assert any(g["from"] <= now - 99 * 60 and g["to"] >= now - 71 * 60 for g in invalid), hr_gaps
    for b in tr["buckets"]:  # nothing drawn inside either gap
        if now - 199 * 60 < b["t"] < now - 161 * 60 or now - 99 * 60 < b["t"] < now - 71 * 60:
            assert b["hr"] is None, b
        if now - 99 * 60 < b["t"] < now - 71 * 60:
            assert b["spo2"] == 96
    assert s.get(w.url + "/patient/%s?span=24h" % w.pb["id"]).status_code == 200
    assert s.get(w.url + "/api/patient/%s/trend?span=7d" % w.pb["id"]).status_code == 400


def test_a_revoked_device_shows_as_revoked(ward):
    w = ward
    t = w.login("technician")
    r = t.post(w.url + "/api/devices/%s/revoke" % DEV_C, json={"reason": "dropped in sink"},
               headers={"X-CSRF-Token": t.csrf})
    assert r.status_code == 200
    s = w.login("clinician-W5")
    tile = [x for x in s.get(w.url + "/api/overview").json()["tiles"] if x["device"] == DEV_C][0]
    assert tile["registry"] == "revoked" and tile["connection"] == "revoked"
    devs = {d["device"]: d for d in t.get(w.url + "/api/devices").json()["devices"]}
    assert devs[DEV_C]["status"] == "revoked" and devs[DEV_C]["reason"] == "dropped in sink"
    r = t.post(w.url + "/api/devices/%s/revoke" % DEV_C, json={"reason": "again"},
               headers={"X-CSRF-Token": t.csrf})
    assert r.status_code == 409 and "already revoked" in r.json()["error"]


def test_devices_page_has_firmware_ota_and_refusals(ward):
    w = ward
    w.status(DEV_A, "0.6.2")
    w.security(DEV_A, "ota-install", version="0.6.2", counter=7)
    seq = w.security(DEV_A, "ota-confirm", version_code=6002)
    w.seen(DEV_A, seq)
    assert w.gw.handle("vn/%s/tm" % DEV_B, b"\x02garbage") == "malformed"
    import hashlib
    import hmac
    from firmware import frames
    bad = frames.seal(frames.vitals((bytes.fromhex(DEV_B), 999, int(time.time()), 0,
                                     frames.T_WALL), 700, 970, 90, 0, []),
                      lambda b: hmac.new(b"\0" * 32, b, hashlib.sha256).digest())
    assert w.gw.handle("vn/%s/tm" % DEV_B, bad) == "forged"
    t = w.login("technician")
    devs = {d["device"]: d for d in t.get(w.url + "/api/devices").json()["devices"]}
    assert devs[DEV_A]["fw"] == "0.6.2" and devs[DEV_A]["ota"] == "confirmed"
    # both refusals came on B's topic: the gateway's refusal log counts each by device
    assert devs[DEV_B]["refused"] == {"forged": 1, "malformed": 1}
    assert "ota-confirm" in t.get(w.url + "/devices").text


def test_the_tile_shows_the_battery_and_its_alerts(ward):
    w = ward
    s = w.login("clinician")  # ward 3: device A's patient

    def tile():
        return [x for x in s.get(w.url + "/api/overview").json()["tiles"] if x["device"] == DEV_A][0]
    w.seen(DEV_A, w.status(DEV_A))  # a node without a battery monitor: nothing to show
    assert tile()["battery_pct"] is None and tile()["battery_mv"] is None
    w.seen(DEV_A, w.status(DEV_A, battery=(3360, 15)))
    t = tile()
    assert t["battery_pct"] == 15 and t["battery_mv"] == 3360
    w.seen(DEV_A, w.alert(DEV_A, "battery_critical"))
    a = wait(lambda: [x for x in tile()["alerts"] if x["alert"] == "battery_critical"])
    assert a[0]["words"] == "Battery empty: sensor switching off" and a[0]["severity"] == "medium"
    w.seen(DEV_A, w.alert(DEV_A, "battery_critical", raised=False))


def test_a_busy_stream_ends_with_its_session(ward, monkeypatch):
    """A live stream re-checks its session even while tiles keep coming: a
    user whose wards change (or who is disabled) stops receiving them."""
    import tools.wardapp.app as appmod
    w = ward
    monkeypatch.setattr(appmod, "SESSION_CHECK_S", 0.3)
    st = Stream(w, "clinician")
    try:
        st.tile(DEV_A, w.vitals(DEV_A), timeout=2)
        w.app.users.update("nurse.kim", "admin.ann", wards=["W3", "W5"])
        deadline = time.monotonic() + 5
        ended = False
        while not ended and time.monotonic() < deadline:
            w.vitals(DEV_A)  # busy: a tile every 0.1 s
            try:
                ended = st.q.get(timeout=0.1)[0] == "end"
            except queue.Empty:
                pass
        assert ended
    finally:
        st.close()
        w.app.users.update("nurse.kim", "admin.ann", wards=["W3"])


def test_ack_notes_are_sealed_erased_with_the_patient_and_survive_key_rotation(tmp_path):
    from tools.gateway.crypto import KeyRing
    from tools.gateway.store import Store
    from tools.wardapp import schema
    from tools.wardapp.live import Feed
    ring = KeyRing.load(tmp_path / "data.key", create=True)
    st = Store(tmp_path / "gw.sqlite", key=ring)
    schema.migrate(st)
    t0 = int(time.time()) - 600
    p = st.admit("MRN-9", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="t")
    st.assign(p["id"], DEV_A, "t", start=t0)
    feed = Feed(st, tmp_path / "reg.sqlite")
    feed._alert({"device": DEV_A, "seq": 5, "alert": 3, "raised": True,
                 "received_at": time.time(), "time": t0 + 60, "wall": True})
    feed.ack("%s:5" % DEV_A, "nurse.kim", "Mrs Doe pulled the leads off", p["id"])
    st.close()
    assert b"pulled the leads" not in (tmp_path / "gw.sqlite").read_bytes()
    new = ring.with_new_key()
    new.save()
    st = Store(tmp_path / "gw.sqlite", key=new)
    st.rotate_key(new)
    st.ring = new.only_current()  # the old key is gone
    assert Feed(st, tmp_path / "reg.sqlite").alerts()[0]["note"] == "Mrs Doe pulled the leads off"
    st.discharge(p["id"], "t")
    st.erase(p["id"], "dpo")
    assert Feed(st, tmp_path / "reg.sqlite").alerts() == []
    st.close()


def test_a_restarted_app_knows_the_newest_readings_and_open_alerts(ward):
    from tools.wardapp.live import Feed
    w = ward
    w.status(DEV_B, "0.7.0")
    w.security(DEV_B, "ota-install", version="0.7.0")
    seq = w.vitals(DEV_B, hr=77, spo2=99)
    w.seen(DEV_B, w.alert(DEV_B, "af"))
    f = Feed(w.store, w.reg_path).load()
    d = f.devices[DEV_B]
    assert d.vitals["seq"] == seq and d.vitals["hr_x10"] == 770
    assert d.status["version_code"] == 7000 and d.ota["state"] == "trial"
    assert [e["ev"] for e in d.security].count("ota-install") == 1
    assert "af" in {a["alert"] for a in f.alerts(device=DEV_B, active=True)}
    assert f.poll() == set()  # nothing it loaded comes again as new
