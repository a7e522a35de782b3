"""Encryption at rest, key rotation, erasure, retention and the right of
access. The grep test reads the database files byte for byte (SQLite with
its WAL, the registry, PostgreSQL's whole data directory after a
checkpoint) for a patient's name, MRN, birth date and a stored heart rate
in every form the gateway handles it (decoded JSON, the raw frame)."""
import hashlib
import hmac
import json
import os
import struct

import pytest

from firmware import frames
from tools.gateway.__main__ import main
from tools.gateway.core import Gateway
from tools.gateway.crypto import KeyProblem, KeyRing
from tools.gateway.fhircheck import check_bundle
from tools.gateway.store import Store
from tools.provision import keys as pkeys
from tools.provision.registry import Registry

DEV = "240ac4000c01"
T0 = 1800000000
NAME, GIVEN, MRN, BORN = "Quixantha", "Zebulonia", "MRN-7731904", "1938-04-17"
HR = 1234  # 123.4 /min: a value no file holds by chance


def _setup(tmp_path, db):
    sub = pkeys.subkeys(pkeys.new_root(), DEV)
    with Registry(tmp_path / "reg.sqlite") as r:
        r.begin(DEV, 1, sub, "esp32", False)
        r.activate(DEV)
    gw = Gateway(tmp_path / "reg.sqlite", store=Store(db, key=KeyRing.load(
        tmp_path / "data.key", create=True)), clock=lambda: T0 + 60)  # the frames' world
    return gw, sub


def _frame(sub, seq, t, hr=HR):
    hdr = (bytes.fromhex(DEV), seq, t, 5000 * seq, frames.T_WALL)
    body = frames.vitals(hdr, hr, 975, 91, 0, [(5000 * seq, 800)])
    return frames.seal(body, lambda b: hmac.new(sub["telemetry"], b, hashlib.sha256).digest())


SECRETS = [NAME.encode(), GIVEN.encode(), MRN.encode(), BORN.encode(), b'"hr_x10":1234',
           b'"hr_x10": 1234', b"123.4", struct.pack(">HH", HR, 975)]


def _hits(paths):
    hits = []
    for p in paths:
        data = p.read_bytes()
        hits += ["%s in %s" % (s, p) for s in SECRETS if s in data]
    return hits


def test_no_patient_data_in_the_database_files(db_url, tmp_path, postgres):
    gw, sub = _setup(tmp_path, db_url)
    st = gw.store
    p = st.admit(MRN, NAME, [GIVEN], BORN, "W7", "3", actor="nurse")
    st.assign(p["id"], DEV, "nurse", start=T0)
    assert [gw.handle("vn/%s/tm" % DEV, _frame(sub, i, T0 + 5 * i)) for i in range(1, 30)] == \
        ["stored"] * 29
    assert st.frames(patient_id=p["id"])[0]["hr_x10"] == HR  # readable with the key
    files = [f for f in tmp_path.iterdir() if f.is_file() and not f.name.endswith(".key")]
    if st.db.dialect == "postgresql":
        st.db.query("SELECT 1")
        st.db.conn().execute("CHECKPOINT")
        files += [f for f in postgres.data.rglob("*") if f.is_file()]
    assert len(files) > 2
    # control: what is stored in clear by design (the device id) is found, so the grep sees the rows
    assert any(DEV.encode() in f.read_bytes() for f in files if "pg_wal" not in str(f)
               and "reg.sqlite" not in f.name)
    assert _hits(files) == []
    # the registry's telemetry sub-key is not in its file either
    assert sub["telemetry"].hex().encode() not in (tmp_path / "reg.sqlite").read_bytes()
    assert sub["telemetry"] not in (tmp_path / "reg.sqlite").read_bytes()
    st.close()


def test_the_key_lives_in_an_owner_only_file_and_no_other_key_opens_the_store(tmp_path):
    db = tmp_path / "gw.sqlite"
    st = Store(str(db))                          # a new store makes its key beside it
    st.admit(MRN, NAME, [GIVEN], BORN, "W7", "3", actor="nurse")
    st.close()
    key = tmp_path / "gw.sqlite.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    os.chmod(key, 0o644)
    with pytest.raises(KeyProblem, match="readable by group or others"):
        Store(str(db))
    os.chmod(key, 0o600)
    with pytest.raises(KeyProblem, match="does not open"):
        Store(str(db), key=KeyRing.ephemeral())
    key.rename(tmp_path / "elsewhere.key")
    with pytest.raises(KeyProblem, match="does not exist"):  # no silent new key for old data
        Store(str(db))
    os.environ["VITALNODE_DATA_KEY_FILE"] = str(tmp_path / "elsewhere.key")
    try:
        assert Store(str(db)).find_patient(MRN)["family"] == NAME
    finally:
        del os.environ["VITALNODE_DATA_KEY_FILE"]


def test_rotate_key_reseals_the_store_and_the_registry(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VITALNODE_DATA_KEY_FILE", str(tmp_path / "data.key"))
    db = str(tmp_path / "gw.sqlite")
    gw, sub = _setup(tmp_path, db)
    p = gw.store.admit(MRN, NAME, [GIVEN], BORN, "W7", "3", actor="nurse")
    gw.store.assign(p["id"], DEV, "nurse", start=T0)
    assert gw.handle("vn/%s/tm" % DEV, _frame(sub, 1, T0 + 1)) == "stored"
    gw.close()
    old = KeyRing.load(tmp_path / "data.key")
    assert main(["rotate-key", "--db", db, "--registry", str(tmp_path / "reg.sqlite")]) == 0
    assert "1 frames and every patient re-sealed; 4 registry sub-keys" in capsys.readouterr().out
    new = KeyRing.load(tmp_path / "data.key")
    assert list(new.keys) == [new.current] and new.current not in old.keys
    with pytest.raises(KeyProblem):
        Store(db, key=old)
    gw = Gateway(tmp_path / "reg.sqlite", db, clock=lambda: T0 + 60)
    assert gw.store.find_patient(MRN)["id"] == p["id"]          # MRN index recomputed
    assert gw.store.frames(patient_id=p["id"])[0]["hr_x10"] == HR
    assert gw.handle("vn/%s/tm" % DEV, _frame(sub, 2, T0 + 6)) == "stored"  # sub-keys still open
    assert [e["action"] for e in gw.store.audit_log()][-1] == "rotate-key"


def test_erasure_deletes_the_patient_and_keeps_only_the_fact(db_url, tmp_path):
    gw, sub = _setup(tmp_path, db_url)
    st = gw.store
    p = st.admit(MRN, NAME, [GIVEN], BORN, "W7", "3", actor="nurse")
    q = st.admit("MRN-OTHER", "Other", [], "1970-01-01", "W7", "4", actor="nurse")
    st.assign(p["id"], DEV, "nurse", start=T0, end=T0 + 100)
    st.assign(q["id"], DEV, "nurse", start=T0 + 100)
    gw.handle_many([("vn/%s/tm" % DEV, _frame(sub, i, T0 + 10 * i)) for i in range(1, 15)])
    from tools.gateway.tokens import Tokens
    Tokens(st).issue("quix", "patient", patient_id=p["id"])
    st.discharge(p["id"], "nurse", at=T0 + 100)
    n = st.erase(p["id"], actor="dpo")
    assert n == {"frames": 9, "assignments": 1}
    assert st.patient(p["id"]) is None and st.find_patient(MRN) is None
    assert st.frames(patient_id=p["id"]) == [] and st.assignments(pid=p["id"]) == []
    assert [r["seq"] for r in st.frames()] == list(range(10, 15))   # the other patient's stay
    assert all(r["patient_id"] == q["id"] for r in st.frames())
    assert st.db.one("SELECT COUNT(*) FROM tokens WHERE patient_id = ?", (p["id"],))[0] == 0
    # a node that sends an erased frame again is acknowledged, and nothing comes back
    assert gw.handle("vn/%s/tm" % DEV, _frame(sub, 3, T0 + 30)) == "erased"
    assert st.frames(device=DEV)[0]["seq"] == 10
    trail = st.audit_log(p["id"])
    assert trail[-1]["action"] == "erase" and trail[-1]["actor"] == "dpo"
    text = json.dumps(st.audit_log())
    assert NAME not in text and MRN not in text and BORN not in text and GIVEN not in text
    st.close()


def test_retention_purges_old_frames_and_long_discharged_patients(tmp_path):
    gw, sub = _setup(tmp_path, str(tmp_path / "gw.sqlite"))
    st = gw.store
    old = st.admit("MRN-OLD", "Old", [], "1940-01-01", "W1", "1", actor="nurse")
    cur = st.admit("MRN-NOW", "Now", [], "1950-01-01", "W1", "2", actor="nurse")
    st.assign(old["id"], DEV, "nurse", start=T0, end=T0 + 50)
    gw.handle_many([("vn/%s/tm" % DEV, _frame(sub, i, T0 + 10 * i)) for i in range(1, 9)])
    st.discharge(old["id"], "nurse", at=T0 + 50)
    day = 86400
    now = st.frames()[0]["received_at"] + 40 * day
    st.db.query("SELECT 1")
    with st.db.tx() as c:  # the old stay ended 40 days before `now`, the frames arrived then too
        c.execute("UPDATE patients SET discharged_at = ? WHERE id = ?", (now - 40 * day, old["id"]))
        c.execute("UPDATE frames SET received_at = ? WHERE seq > 6", (now - day,))
    n = st.purge(30, actor="ward", now=now)
    assert n["frames"] == 6 and n["patients"] == 1
    assert st.patient(old["id"]) is None and st.patient(cur["id"]) is not None
    assert [r["seq"] for r in st.frames()] == [7, 8]
    assert [e["action"] for e in st.audit_log()][-2:] == ["purge-patient", "purge"]
    with pytest.raises(Exception, match="positive"):
        st.purge(0, actor="ward")


def test_right_of_access_exports_everything_about_one_patient(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VITALNODE_DATA_KEY_FILE", str(tmp_path / "data.key"))
    db = str(tmp_path / "gw.sqlite")
    gw, sub = _setup(tmp_path, db)
    p = gw.store.admit(MRN, NAME, [GIVEN], BORN, "W7", "3", actor="nurse")
    gw.store.assign(p["id"], DEV, "nurse", start=T0)
    gw.handle_many([("vn/%s/tm" % DEV, _frame(sub, i, T0 + 5 * i)) for i in range(1, 6)])
    gw.close()
    out = tmp_path / "access.json"
    assert main(["access", "--db", db, "--patient", MRN, "--out", str(out), "--by", "dpo"]) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    b = json.loads(out.read_text())
    check_bundle(b)
    kinds = [e["resource"]["resourceType"] for e in b["entry"]]
    assert b["type"] == "collection" and kinds.count("Patient") == 1 and kinds.count("Device") == 1
    assert kinds.count("Observation") == 10 and kinds.count("AuditEvent") == 3  # admit, assign, access
    who = {e["resource"]["agent"][0]["who"]["display"] for e in b["entry"]
           if e["resource"]["resourceType"] == "AuditEvent"}
    assert who == {"nurse", "dpo"}
