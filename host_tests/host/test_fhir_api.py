"""The ward's FHIR R4 API as an EHR integration uses it, through fhirpy over
real HTTP (uvicorn on loopback): metadata, reads, a paged Observation
search with code and date filters, bearer tokens whose scopes and
compartments decide who reads what; and `tools.gateway export
--fhir-url`, which posts the export with the same library to a recording
FHIR server that processes the transaction as a strict server would."""
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError, OperationOutcome

from host_tests.host.fhirhelp import RecordingFhirServer, Served
from tools.gateway.api import create_app
from tools.gateway.crypto import KeyRing
from tools.gateway.fhircheck import check_bundle
from tools.gateway.store import Store
from tools.gateway.tokens import TokenError, Tokens

DEV, DEV2 = "240ac4000b01", "240ac4000b02"
T0 = 1800000000  # 2027-01-15T08:00:00Z


def _frames(dev, n, t0, wall=True, every=5):
    return [{"device": dev, "seq": i + 1, "kind": "vitals", "time": t0 + every * i if wall else 3,
             "ms": 5000 * i, "wall": wall, "received_at": T0 + 10 ** 5, "raw": b"f%d" % i,
             "fields": {"hr_x10": 700 + i, "spo2_x10": 960 + (i % 3), "quality": 80,
                        "beats": [], "version_code": 6000}} for i in range(n)]


@pytest.fixture
def ward(tmp_path):
    st = Store(str(tmp_path / "gw.sqlite"), key=KeyRing.load(tmp_path / "k", create=True))
    a = st.admit("MRN-A1", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="t")
    b = st.admit("MRN-B2", "Roe", ["Rick"], "1961-07-30", "W5", "1", actor="t")
    st.assign(a["id"], DEV, "t", start=T0)
    st.assign(b["id"], DEV2, "t", start=T0)
    st.insert_frames(_frames(DEV, 30, T0) + _frames(DEV2, 3, T0))
    st.insert_frames([dict(_frames(DEV, 1, T0)[0], seq=99, kind="status",
                           fields={"version_code": 6001})])
    tok = Tokens(st)
    with Served(create_app(st)) as srv:
        yield {"st": st, "a": a, "b": b, "tok": tok, "url": srv.url + "/fhir"}
    st.close()


def client(w, token):
    return SyncFHIRClient(w["url"], authorization="Bearer %s" % token if token else None)


def test_an_ehr_reads_patients_and_devices_and_pages_through_observations(ward):
    w = ward
    c = client(w, w["tok"].issue("ehr-link", "integration"))
    cap = c.execute("metadata", method="get")
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"
    p = c.get("Patient", w["a"]["id"])
    assert p["identifier"][0]["value"] == "MRN-A1" and p["name"][0]["family"] == "Doe"
    assert p["birthDate"] == "1950-02-03"
    d = c.get("Device", "vn-" + DEV)
    assert d["identifier"][0]["value"] == DEV and d["version"][0]["value"] == "0.6.1"
    s = c.resources("Observation").search(patient=w["a"]["id"], code="http://loinc.org|8867-4")
    got = s.limit(7).fetch_all()  # fhirpy follows the next links
    assert [o["valueQuantity"]["value"] for o in got] == [70.0 + i / 10 for i in range(30)]
    assert all(o["subject"]["reference"] == "Patient/" + w["a"]["id"] for o in got)
    assert all(o["device"]["reference"] == "Device/vn-" + DEV for o in got)
    assert got[0]["effectiveDateTime"] == "2027-01-15T08:00:00Z"
    first = c.execute("Observation", method="get", params={"patient": w["a"]["id"], "_count": 7})
    assert len(first["entry"]) == 7 and [lk["relation"] for lk in first["link"]] == ["self", "next"]
    check_bundle(first, resolve=lambda ref: bool(c.get(*ref.split("/"))))  # refs resolve on the server
    # date window and both codes: 08:00:50 <= t < 08:01:20 is frames 10..15, HR and SpO2 each
    win = c.resources("Observation").search(patient="Patient/" + w["a"]["id"]).search(
        date__ge="2027-01-15T08:00:50Z", date__lt="2027-01-15T08:01:20Z").fetch_all()
    assert len(win) == 12 and {o["code"]["coding"][0]["code"] for o in win} == {"8867-4", "2708-6"}
    spo2 = c.resources("Observation").search(patient=w["a"]["id"], code="59408-5",
                                             date="2027-01-15T08:00:00Z").fetch_all()
    assert [o["valueQuantity"]["code"] for o in spo2] == ["%"]
    one = c.get("Observation", got[3]["id"])
    assert one["valueQuantity"]["value"] == 70.3
    reads = [e for e in w["st"].audit_log(w["a"]["id"]) if e["action"].startswith("fhir-")]
    assert reads and {e["actor"] for e in reads} == {"ehr-link"}


def test_tokens_scopes_and_compartments_decide_who_reads_what(ward):
    w = ward
    a, b = w["a"]["id"], w["b"]["id"]
    tok = w["tok"]
    nurse = client(w, tok.issue("nurse.kim", "clinician", wards=["W3"]))
    tech = client(w, tok.issue("tech.lee", "technician"))
    jane = client(w, tok.issue("jane", "patient", patient_id=a))
    nobody = client(w, None)
    forged = client(w, "vnt_" + "A" * 43)
    obs_a = {"patient": a}
    cases = [  # (client, what, allowed)
        (nurse, ("Patient", a), True), (nurse, ("Patient", b), False),
        (nurse, ("Observation", obs_a), True), (nurse, ("Observation", {"patient": b}), False),
        (nurse, ("Device", "vn-" + DEV), True),
        (tech, ("Device", "vn-" + DEV), True), (tech, ("Patient", a), False),
        (tech, ("Observation", obs_a), False),
        (jane, ("Patient", a), True), (jane, ("Patient", b), False),
        (jane, ("Observation", obs_a), True), (jane, ("Observation", {"patient": b}), False),
        (jane, ("Device", "vn-" + DEV), True), (jane, ("Device", "vn-" + DEV2), False),
    ]
    for c, (rtype, arg), allowed in cases:
        call = (lambda c=c, rtype=rtype, arg=arg: c.get(rtype, arg)) if isinstance(arg, str) else \
            (lambda c=c, rtype=rtype, arg=arg: c.resources(rtype).search(**arg).fetch())
        if allowed:
            assert call() is not None
        else:
            with pytest.raises(ForbiddenError):
                call()
    for c in (nobody, forged):
        with pytest.raises(AuthorizationError):
            c.get("Patient", a)
    t = tok.issue("nurse.kim", "clinician", wards=["W3"])
    client(w, t).get("Patient", a)
    tok.revoke_user("nurse.kim")
    with pytest.raises(AuthorizationError):
        client(w, t).get("Patient", a)
    with pytest.raises(OperationOutcome):  # a filter this server does not know is refused, not ignored
        client(w, tok.issue("ehr", "integration")).resources("Observation").search(
            patient=a, status="final").fetch()
    for bad in [dict(user="x", role="technician", scopes=["user/Patient.read"]),
                dict(user="x", role="clinician"), dict(user="x", role="patient"),
                dict(user="x", role="auditor"), dict(user="x", role="nurse")]:
        with pytest.raises(TokenError):
            tok.issue(**bad)
    assert all(e["action"] != "fhir-read" or e["actor"] != "tech.lee"
               for e in w["st"].audit_log(a))


def test_export_posts_a_transaction_to_a_fhir_server_and_twice_changes_nothing(ward, tmp_path,
                                                                               capsys, monkeypatch):
    from tools.gateway.__main__ import main
    w = ward
    monkeypatch.setenv("VITALNODE_DATA_KEY_FILE", str(tmp_path / "k"))
    sink = RecordingFhirServer()
    db = str(w["st"].db.path)
    with Served(sink.app) as srv:
        url = srv.url + "/fhir"
        for _ in range(2):
            assert main(["export", "--db", db, "--fhir-url", url, "--token", "t0k",
                         "--patient", "MRN-A1"]) == 0
    out = capsys.readouterr().out
    assert "posted 60 Observations (60 vital-signs" in out and "201 x62" in out and "200 x62" in out
    assert len(sink.received) == 2 and sink.received[0] == sink.received[1]
    types = [t for t, _ in sink.resources]
    assert types.count("Patient") == 1 and types.count("Device") == 1
    assert types.count("Observation") == 60  # the second post updated, created nothing
    obs = [r for (t, _), r in sink.resources.items() if t == "Observation"]
    pat = [i for t, i in sink.resources if t == "Patient"][0]
    assert {o["subject"]["reference"] for o in obs} == {"Patient/" + pat}
    with Served(sink.app) as srv:
        assert main(["export", "--db", db, "--fhir-url", srv.url + "/nothing-here"]) == 2
    assert "no FHIR endpoint" in capsys.readouterr().err


def test_cli_tokens_and_a_server_that_will_not_send_tokens_in_clear(tmp_path, capsys, monkeypatch):
    from tools.gateway.__main__ import main
    monkeypatch.setenv("VITALNODE_DATA_KEY_FILE", str(tmp_path / "k"))
    db = str(tmp_path / "gw.sqlite")
    assert main(["token", "issue", "--db", db, "--user", "ehr", "--role", "integration"]) == 0
    token = capsys.readouterr().out.strip()
    st = Store(db)
    assert Tokens(st).verify(token).scopes == ("user/*.read",)
    assert main(["token", "issue", "--db", db, "--user", "t", "--role", "technician",
                 "--scope", "user/Observation.read"]) == 2
    assert "may not have scope" in capsys.readouterr().err
    assert main(["token", "revoke", "--db", db, "--user", "ehr"]) == 0
    assert Tokens(st).verify(token) is None
    assert main(["serve", "--db", db, "--host", "0.0.0.0"]) == 2
    assert "without TLS" in capsys.readouterr().err
