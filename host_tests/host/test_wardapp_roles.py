"""Roles are enforced on the server for every page and every API call: the
whole role x endpoint matrix, over HTTPS, as the issue states the policy
(clinician: their own wards' patients and acknowledgements; technician:
devices; admin: users, roles, wards; auditor: the audit log only;
admission, devices on patients and discharge: clinicians, for their own
wards). The
table below is the specification, written independently of the app's own
permission table; a route the table does not cover fails the test."""
import pytest
import requests

from host_tests.host.wardhelp import DEV_A, DEV_X, WardRig

ROLES = ("anonymous", "clinician", "clinician-W5", "technician", "admin", "auditor")
ANY = set(ROLES) - {"anonymous"}
NOBODY = set()


def _spec(w, alert_id):
    """(method, route template, concrete path, body, roles allowed)."""
    pa = w.pa["id"]
    return [
        ("GET", "/", "/", None, ANY),
        ("GET", "/overview", "/overview", None, {"clinician", "clinician-W5"}),
        ("GET", "/patient/{pid}", "/patient/%s" % pa, None, {"clinician"}),
        ("GET", "/alerts", "/alerts", None, {"clinician", "clinician-W5"}),
        ("GET", "/patients", "/patients", None, {"clinician", "clinician-W5"}),
        ("GET", "/devices", "/devices", None, {"technician"}),
        ("GET", "/admin", "/admin", None, {"admin"}),
        ("GET", "/audit", "/audit", None, {"auditor"}),
        ("GET", "/account/password", "/account/password", None, ANY),
        ("POST", "/account/password", "/account/password",
         {"old": "wrong", "new": "x" * 14, "again": "x" * 14}, ANY),
        ("GET", "/api/overview", "/api/overview", None, {"clinician", "clinician-W5"}),
        ("GET", "/api/events", "/api/events", None, {"clinician", "clinician-W5"}),
        ("GET", "/api/patient/{pid}/trend", "/api/patient/%s/trend?span=24h" % pa, None,
         {"clinician"}),
        ("GET", "/api/alerts", "/api/alerts", None, {"clinician", "clinician-W5"}),
        ("POST", "/api/alerts/{aid}/ack", "/api/alerts/%s/ack" % alert_id, {"note": "seen"},
         {"clinician"}),
        ("GET", "/api/patients", "/api/patients", None, {"clinician", "clinician-W5"}),
        # W3's clinician admits to W3, puts a device on, takes it off, discharges; the W5
        # clinician is refused each (the ward check), everyone else by role
        ("POST", "/api/admit", "/api/admit", {"mrn": "MRN-M", "family": "Matrix", "given": "Max",
                                              "birth_date": "1960-06-06", "ward": "W3",
                                              "bed": "60"}, {"clinician"}),
        ("POST", "/api/assign", "/api/assign", {"patient": "MRN-M", "device": DEV_X},
         {"clinician"}),
        ("POST", "/api/unassign", "/api/unassign", {"patient": "MRN-M", "device": DEV_X},
         {"clinician"}),
        ("POST", "/api/discharge", "/api/discharge", {"patient": "MRN-M"}, {"clinician"}),
        ("GET", "/api/devices", "/api/devices", None, {"technician"}),
        ("POST", "/api/devices/{dev}/{action:str}", "/api/devices/%s/revoke" % DEV_X,
         {"reason": "matrix"}, {"technician"}),
        ("POST", "/api/devices/{dev}/{action:str}", "/api/devices/%s/reinstate" % DEV_X,
         {"reason": "matrix"}, {"technician"}),
        ("GET", "/api/users", "/api/users", None, {"admin"}),
        ("POST", "/api/users", "/api/users", {"name": "new.nina", "role": "clinician",
                                              "wards": "W3"}, {"admin"}),
        ("POST", "/api/users/{name}", "/api/users/spare.sam", {"wards": "", "role": "technician"},
         {"admin"}),
        ("POST", "/api/users/{name}/reset", "/api/users/spare.sam/reset", {}, {"admin"}),
        ("POST", "/api/wards", "/api/wards", {"name": "W7"}, {"admin"}),
        ("GET", "/api/audit", "/api/audit", None, {"auditor"}),
        ("GET", "/api/audit/export", "/api/audit/export", None, {"auditor"}),
        # the FHIR API takes bearer tokens, never the app's session cookie
        ("GET", "/fhir/Patient/{id}", "/fhir/Patient/%s" % pa, None, NOBODY),
        ("GET", "/fhir/Observation", "/fhir/Observation?patient=%s" % pa, None, NOBODY),
        ("GET", "/fhir/Device/{id}", "/fhir/Device/vn-%s" % DEV_A, None, NOBODY),
        ("GET", "/fhir/Observation/{id}", "/fhir/Observation/x", None, NOBODY),
        ("POST", "/logout", "/logout", {}, ANY),  # last: it ends the session
    ]


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    w = WardRig(tmp_path_factory.mktemp("roles"))
    w.vitals(DEV_A)
    w.seen(DEV_A, w.alert(DEV_A, "hr_high"))
    w.app.users.create("spare.sam", "technician", [], actor="setup")
    yield w
    w.close()


def _call(w, s, method, path, body):
    url = w.url + path
    if method == "GET":
        r = s.get(url, allow_redirects=False, timeout=10, stream=True)
        r.close()  # the event stream stays open otherwise
        return r
    return s.post(url, json=body, headers={"X-CSRF-Token": getattr(s, "csrf", "")},
                  allow_redirects=False, timeout=10)


def _denied(r):
    return r.status_code in (401, 403) or (r.status_code == 303 and
                                           r.headers["location"] in ("/login",
                                                                     "/account/password"))


def test_every_role_on_every_endpoint(ward):
    w = ward
    alert_id = w.app.feed.alerts(device=DEV_A)[0]["id"]
    spec = _spec(w, alert_id)
    # the specification covers every route the app has
    covered = {(m, t) for m, t, *_ in spec}
    routes = {(m, p) for m, p, *_ in w.app.routes_table()} | {
        ("GET", "/fhir/Patient/{id}"), ("GET", "/fhir/Observation"), ("GET", "/fhir/Device/{id}"),
        ("GET", "/fhir/Observation/{id}")}
    assert routes <= covered, "routes without a row in the matrix: %s" % sorted(routes - covered)
    sessions = {}
    for role in ROLES:
        if role == "anonymous":
            s = requests.Session()
            s.trust_env, s.verify = False, w.ca
        else:
            s = w.login(role)
            assert s.login_status == 303, role
        sessions[role] = s
    unexpected_allow, unexpected_deny, pairs = [], [], 0
    for method, _, path, body, allowed in spec:
        for role in ROLES:
            r = _call(w, sessions[role], method, path, body)
            pairs += 1
            assert r.status_code < 500, (role, method, path, r.status_code, r.text[:300])
            denied = _denied(r)
            if path == "/logout":  # both answers go to /login: did it end a session?
                denied = "__Host-vn_session=" not in r.headers.get("set-cookie", "")
                if not denied:
                    assert _call(w, sessions[role], "GET", "/api/overview", None).status_code == 401
            if denied and role in allowed:
                unexpected_deny.append((role, method, path, r.status_code))
            elif not denied and role not in allowed:
                unexpected_allow.append((role, method, path, r.status_code))
    print("\nrole matrix: %d role x endpoint pairs, %d unexpected allows, %d unexpected denies"
          % (pairs, len(unexpected_allow), len(unexpected_deny)))
    assert not unexpected_allow, unexpected_allow
    assert not unexpected_deny, unexpected_deny


def test_what_an_allowed_call_did(ward):
    """The allowed state changes of the matrix took effect, each audited by
    the user who made it (a 200 alone proves nothing)."""
    w = ward
    a = [x for x in w.app.feed.alerts(device=DEV_A)][0]
    assert a["acked_by"] == "nurse.kim" and a["note"] == "seen"
    from tools.provision.registry import Registry
    with Registry(w.reg_path) as reg:
        assert reg.device(DEV_X)["status"] == "active"
        assert [e["what"] for e in reg.events(DEV_X)][-2:] == ["revoked", "reinstated"]
    assert w.app.users.get("new.nina")["must_change"]
    m = w.store.find_patient("MRN-M")
    assert m["ward"] == "W3" and m["discharged_at"] is not None
    assert [(a["device"], a["end_time"] is not None) for a in w.store.assignments(pid=m["id"])] \
        == [(DEV_X, True)]
    assert not [e for e in w.store.audit_log(subject=m["id"]) if e["actor"] != "nurse.kim"]
    acts = {(e["actor"], e["action"]) for e in w.store.audit_log()}
    for who, what in (("nurse.kim", "alert-ack"), ("tech.tom", "device-revoke"),
                      ("tech.tom", "device-reinstate"), ("admin.ann", "user-create"),
                      ("admin.ann", "user-reset"), ("admin.ann", "ward-add"),
                      ("audit.abe", "audit-export"), ("nurse.kim", "view-trend"),
                      ("nurse.kim", "view-overview"), ("nurse.kim", "view-patients"),
                      ("nurse.kim", "admit"), ("nurse.kim", "assign"), ("nurse.kim", "unassign"),
                      ("nurse.kim", "discharge"), ("nurse.kim", "logout")):
        assert (who, what) in acts, (who, what)
    # the W5 clinician saw no W3 patient: no view of theirs names one
    w3 = {w.pa["id"], w.pb["id"]}
    assert not [e for e in w.store.audit_log(actor="nurse.lee") if e["subject"] in w3]


def test_a_technician_sees_no_patient_and_no_vitals(ward):
    w = ward
    t = w.login("technician")
    r = t.get(w.url + "/api/devices", timeout=10)
    text = r.text + t.get(w.url + "/devices", timeout=10).text
    assert r.status_code == 200 and DEV_A in text
    for secret in ("Doe", "DOE", "Jane", "MRN-1", w.pa["id"], "hr_x10", "spo2"):
        assert secret not in text, secret


def test_a_clinician_sees_only_their_wards(ward):
    w = ward
    s = w.login("clinician-W5")
    tiles = s.get(w.url + "/api/overview", timeout=10).json()["tiles"]
    assert {t["patient_id"] for t in tiles} == {w.pc["id"]}
    r = s.get(w.url + "/patient/%s" % w.pa["id"], timeout=10)
    assert r.status_code == 403 and "Doe" not in r.text


def test_state_changes_need_the_csrf_token_and_this_origin(ward):
    w = ward
    s = w.login("technician")
    url = w.url + "/api/devices/%s/revoke" % DEV_X
    assert s.post(url, json={"reason": "x"}, timeout=10).status_code == 403
    assert s.post(url, json={"reason": "x"}, headers={"X-CSRF-Token": "forged"},
                  timeout=10).status_code == 403
    assert s.post(url, json={"reason": "x"}, headers={"X-CSRF-Token": s.csrf,
                                                      "Origin": "https://evil.example"},
                  timeout=10).status_code == 403
    from tools.provision.registry import Registry
    with Registry(w.reg_path) as reg:
        assert reg.device(DEV_X)["status"] == "active"
