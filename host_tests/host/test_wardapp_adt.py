"""Admission, devices and discharge in the ward app (issue 23): a clinician
admits a patient to one of their wards, puts a device on them (from now or
from a given time), takes it off and discharges them, over HTTPS with the
session's CSRF token. Every change goes through the store and is audited
with the clinician as actor. Mistakes come back as one clear 400/403/404/
409 with the store's words and change nothing: unknown MRN, another ward,
overlap, bad date, unknown or inactive device. Open overviews follow: a new
assignment brings a tile, an unassignment or discharge takes it away."""
import datetime
import json
import time

import pytest

from host_tests.host.wardhelp import DEV_A, DEV_C, DEV_X, Events, WardRig, wait
from tools.provision import keys
from tools.provision.registry import Registry

DEV_F, DEV_R, DEV_P = "240ac4000a21", "240ac4000a22", "240ac4000a23"  # free, revoked, pending
DEV_G = "240ac4000a24"  # free
ADT = ("admit", "readmit", "assign", "unassign", "discharge")


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    w = WardRig(tmp_path_factory.mktemp("adt"), notify=False)
    with Registry(w.reg_path) as reg:
        for d in (DEV_F, DEV_G, DEV_R, DEV_P):
            reg.begin(d, 1, keys.subkeys(keys.new_root(), d), "esp32", False)
            if d != DEV_P:
                reg.activate(d)
        reg.revoke(DEV_R, "lost in the laundry")
    yield w
    w.close()


@pytest.fixture(scope="module")
def kim(ward):
    return ward.login("clinician")


def _post(w, s, path, body):
    return s.post(w.url + path, json=body, headers={"X-CSRF-Token": s.csrf}, timeout=10)


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _adt_trail(w):
    return [(e["actor"], e["action"], e["subject"]) for e in w.store.audit_log()
            if e["action"] in ADT]


def _tiles(w, s):
    return {t["device"]: t for t in s.get(w.url + "/api/overview", timeout=10).json()["tiles"]}


def test_a_clinician_admits_assigns_unassigns_and_discharges(ward, kim):
    w, s = ward, kim
    r = _post(w, s, "/api/admit", {"mrn": "MRN-10", "family": "Smith", "given": "Anna Maria",
                                   "birth_date": "1970-04-05", "gender": "female", "ward": "W3",
                                   "bed": "7"})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "admitted SMITH, Anna Maria (MRN MRN-10) to W3 bed 7"
    p = w.store.find_patient("MRN-10")
    assert (p["family"], p["given"], p["birth_date"], p["gender"], p["ward"], p["bed"],
            p["discharged_at"]) == ("Smith", ["Anna", "Maria"], "1970-04-05", "female", "W3",
                                    "7", None)
    listed = {x["mrn"]: x for x in s.get(w.url + "/api/patients", timeout=10).json()["patients"]}
    assert listed["MRN-10"]["id"] == p["id"] and listed["MRN-10"]["assignments"] == []
    assert "MRN-3" not in listed  # W5's patient is not on this clinician's list
    page = s.get(w.url + "/patients", timeout=10).text
    assert "SMITH" in page and "MRN-10" in page and "Poe" not in page

    # a device from a given time (an assignment entered late), then taken off
    start = int(time.time()) - 600
    r = _post(w, s, "/api/assign", {"patient": "MRN-10", "device": DEV_X.upper(),
                                    "from": _iso(start)})
    assert r.status_code == 200, r.text
    [a] = w.store.assignments(pid=p["id"])
    assert (a["device"], a["start_time"], a["end_time"]) == (DEV_X, start, None)
    assert _tiles(w, s)[DEV_X]["patient_id"] == p["id"]
    r = _post(w, s, "/api/unassign", {"patient": p["id"], "device": DEV_X})
    assert r.status_code == 200, r.text
    [a] = w.store.assignments(pid=p["id"])
    assert a["end_time"] is not None and DEV_X not in _tiles(w, s)

    # a device from now: on the overview at once; the discharge ends it
    t0 = time.time()
    r = _post(w, s, "/api/assign", {"patient": "MRN-10", "device": DEV_F})
    assert r.status_code == 200, r.text
    [a] = w.store.assignments(device=DEV_F)
    assert a["end_time"] is None and t0 - 1 <= a["start_time"] <= t0 + 1
    assert _tiles(w, s)[DEV_F]["patient_id"] == p["id"]
    r = _post(w, s, "/api/discharge", {"patient": "MRN-10"})
    assert r.status_code == 200, r.text
    assert "discharged SMITH, Anna Maria" in r.json()["message"]
    p2 = w.store.patient(p["id"])
    assert p2["discharged_at"] is not None
    assert all(x["end_time"] is not None for x in w.store.assignments(pid=p["id"]))
    assert DEV_F not in _tiles(w, s)
    assert "MRN-10" not in {x["mrn"] for x in
                            s.get(w.url + "/api/patients", timeout=10).json()["patients"]}

    # each change audited once, by the clinician, naming the patient by id only
    mine = [(a, x) for a, x, pid in _adt_trail(w) if pid == p["id"]]
    assert mine == [("nurse.kim", "admit"), ("nurse.kim", "assign"), ("nurse.kim", "unassign"),
                    ("nurse.kim", "assign"), ("nurse.kim", "discharge")]
    text = json.dumps(w.store.audit_log(subject=p["id"]))
    assert "Smith" not in text and "MRN-10" not in text
    assert ("nurse.kim", "view-patients", p["id"]) in {
        (e["actor"], e["action"], e["subject"]) for e in w.store.audit_log()}

    # admitted again: the same patient, re-admitted
    r = _post(w, s, "/api/admit", {"mrn": "MRN-10", "family": "Smith", "given": ["Anna"],
                                   "birth_date": "1970-04-05", "ward": "W3", "bed": "9"})
    assert r.status_code == 200 and r.json()["message"].startswith("re-admitted")
    assert r.json()["patient"]["id"] == p["id"]
    assert _adt_trail(w)[-1] == ("nurse.kim", "readmit", p["id"])


def _refused(w, s, path, body, status, words):
    """Refused with `status` and a message containing `words`; no store change."""
    before = (_adt_trail(w), w.store.assignments(), w.store.patients(include_discharged=True))
    r = _post(w, s, path, body)
    assert r.status_code == status, (path, body, r.status_code, r.text)
    err = r.json()["error"]
    assert words in err, (err, words)
    assert "Traceback" not in r.text
    assert (_adt_trail(w), w.store.assignments(),
            w.store.patients(include_discharged=True)) == before
    return err


def test_mistakes_get_a_clear_answer_and_change_nothing(ward, kim):
    w, s = ward, kim
    now = int(time.time())
    pa = w.pa["id"]
    # unknown patient
    _refused(w, s, "/api/assign", {"patient": "MRN-404", "device": DEV_F}, 404,
             "no patient with MRN or id 'MRN-404'")
    _refused(w, s, "/api/discharge", {"patient": "MRN-404"}, 404, "no patient")
    _refused(w, s, "/api/unassign", {"patient": "MRN-404", "device": DEV_A}, 404, "no patient")
    _refused(w, s, "/api/discharge", {}, 400, "patient is required")
    # another ward: the second wall
    _refused(w, s, "/api/admit", {"mrn": "MRN-20", "family": "Ng", "birth_date": "1980-01-01",
                                  "ward": "W5", "bed": "1"}, 403, "not one of your wards")
    assert w.store.find_patient("MRN-20") is None
    _refused(w, s, "/api/assign", {"patient": "MRN-3", "device": DEV_F}, 403,
             "not on your wards")
    _refused(w, s, "/api/unassign", {"patient": "MRN-3", "device": DEV_C}, 403,
             "not on your wards")
    _refused(w, s, "/api/discharge", {"patient": w.pc["id"]}, 403, "not on your wards")
    # the state is in the way: the store's own words
    _refused(w, s, "/api/admit", {"mrn": "MRN-1", "family": "Doe", "birth_date": "1950-02-03",
                                  "ward": "W3", "bed": "12"}, 409,
             "a patient with this MRN is already admitted")
    err = _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_A}, 409,
                   "device %s is already assigned to patient %s" % (DEV_A, pa))
    assert err.endswith("unassign it first (W3 bed 12, DOE, Jane)")  # on this nurse's ward
    err = _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_C}, 409,
                   "already assigned")
    assert err.endswith("(a patient not on your wards)") and "Poe" not in err
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_A,
                                   "from": _iso(now - 9 * 3600), "to": _iso(now - 6 * 3600)},
             409, "already assigned")  # overlaps DEV_A's stay on MRN-1 from 7 h ago
    _refused(w, s, "/api/unassign", {"patient": "MRN-2", "device": DEV_A}, 409,
             "no open assignment")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_R}, 409,
             "device %s is revoked in the registry" % DEV_R)
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_P}, 409, "pending")
    # bad input
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": "240ac40000ff"}, 400,
             "not in the registry")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": "bed 14 monitor"}, 400,
             "12 hex digits")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_F, "from": "yesterday"},
             400, "from 'yesterday' is not an ISO date-time")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_F,
                                   "from": "2026-13-45T08:00"}, 400, "not an ISO date-time")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_F,
                                   "from": "1970-01-01T00:00Z"}, 400, "before 2000")
    _refused(w, s, "/api/assign", {"patient": "MRN-2", "device": DEV_F, "from": _iso(now - 60),
                                   "to": _iso(now - 120)}, 400, "is not after from")
    _refused(w, s, "/api/unassign", {"patient": "MRN-1", "device": DEV_A,
                                     "at": _iso(now - 8 * 3600)}, 400,
             "the assignment started at")
    _refused(w, s, "/api/discharge", {"patient": "MRN-2", "at": _iso(now + 3600)}, 400,
             "in the future")
    _refused(w, s, "/api/discharge", {"patient": "MRN-2", "at": _iso(now - 400 * 86400)}, 400,
             "before the admission")
    _refused(w, s, "/api/admit", {"mrn": "MRN-21", "family": "Ng", "birth_date": "03/02/1950",
                                  "ward": "W3", "bed": "1"}, 400, "is not YYYY-MM-DD")
    _refused(w, s, "/api/admit", {"mrn": "MRN-21", "family": "", "birth_date": "1950-02-03",
                                  "ward": "W3", "bed": "1"}, 400, "family name is required")
    _refused(w, s, "/api/admit", {"mrn": "MRN-21", "family": "Ng", "birth_date": "1950-02-03",
                                  "ward": "W3", "bed": "1", "gender": "robot"}, 400, "gender")
    _refused(w, s, "/api/admit", {"mrn": 21, "family": "Ng", "birth_date": "1950-02-03",
                                  "ward": "W3", "bed": "1"}, 400, "mrn: give it as text")
    assert w.store.find_patient("MRN-21") is None
    # a discharged patient cannot be discharged again or given a device
    w.store.admit("MRN-22", "Ito", ["Ken"], "1990-09-09", "W3", "30", actor="setup")
    w.store.discharge(w.store.find_patient("MRN-22")["id"], actor="setup")
    _refused(w, s, "/api/discharge", {"patient": "MRN-22"}, 409, "was discharged at")
    _refused(w, s, "/api/assign", {"patient": "MRN-22", "device": DEV_F}, 409,
             "was discharged at")


def test_changes_need_the_csrf_token(ward, kim):
    w, s = ward, kim
    body = {"mrn": "MRN-30", "family": "Roe", "birth_date": "1950-02-03", "ward": "W3",
            "bed": "3"}
    assert s.post(w.url + "/api/admit", json=body, timeout=10).status_code == 403
    assert s.post(w.url + "/api/admit", json=body, headers={"X-CSRF-Token": "forged"},
                  timeout=10).status_code == 403
    assert s.post(w.url + "/api/discharge", json={"patient": "MRN-1"}, timeout=10
                  ).status_code == 403
    assert w.store.find_patient("MRN-30") is None
    assert w.store.patient(w.pa["id"])["discharged_at"] is None


def test_the_device_list_offers_active_devices_on_no_patient(ward, kim):
    w, s = ward, kim
    got = s.get(w.url + "/api/patients", timeout=10).json()["devices"]
    busy = {a["device"] for a in w.store.assignments() if a["end_time"] is None}
    assert DEV_R not in got and DEV_P not in got  # revoked, pending
    assert not set(got) & busy and DEV_A not in got
    assert set(got) <= {DEV_X, DEV_F, DEV_G} and DEV_G in got


def test_an_assignment_shows_on_the_overview_only_while_it_covers_now(ward, kim):
    w, s = ward, kim
    now = int(time.time())
    r = _post(w, s, "/api/admit", {"mrn": "MRN-40", "family": "Lund", "given": "Eva",
                                   "birth_date": "1944-04-04", "ward": "W3", "bed": "40"})
    assert r.status_code == 200, r.text
    pid = r.json()["patient"]["id"]
    # entered afterwards: from 3 h to 1 h ago (its frames are hers; she has no tile now)
    r = _post(w, s, "/api/assign", {"patient": "MRN-40", "device": DEV_X,
                                    "from": _iso(now - 3 * 3600), "to": _iso(now - 3600)})
    assert r.status_code == 200, r.text
    assert DEV_X not in _tiles(w, s)
    r = _post(w, s, "/api/assign", {"patient": "MRN-40", "device": DEV_X})
    assert r.status_code == 200, r.text
    assert _tiles(w, s)[DEV_X]["patient_id"] == pid
    assert _post(w, s, "/api/discharge", {"patient": pid}).status_code == 200


def test_open_overviews_gain_and_lose_the_tile(ward, kim):
    w, s = ward, kim
    ev = Events(w, w.login("clinician"))
    try:
        r = _post(w, s, "/api/admit", {"mrn": "MRN-50", "family": "Berg", "given": "Ola",
                                       "birth_date": "1938-03-03", "ward": "W3", "bed": "50"})
        pid = r.json()["patient"]["id"]
        assert _post(w, s, "/api/assign", {"patient": pid, "device": DEV_G}).status_code == 200
        assert ev.next("tile", DEV_G)["patient_id"] == pid
        assert _post(w, s, "/api/discharge", {"patient": pid}).status_code == 200
        ev.next("gone", DEV_G)
        wait(lambda: DEV_G not in _tiles(w, s))
    finally:
        ev.close()
