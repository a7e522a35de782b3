"""Patients and device assignment, on SQLite and on PostgreSQL: a frame
belongs to the patient whose assignment covers its measurement time; a
frame without a trusted time, or outside every assignment, stays
device-only; a device is never on two patients at once; the CLI admits,
assigns and discharges, and answers mistakes with one line, not a
traceback; a gateway store from before this schema is migrated and
sealed."""
import json
import sqlite3

import pytest

from tools.gateway.__main__ import main
from tools.gateway.crypto import KeyRing
from tools.gateway.store import Store, StoreError

DEV, DEV2 = "240ac4000a01", "240ac4000a02"
T0 = 1800000000


def store(url, tmp_path):
    return Store(url, key=KeyRing.load(tmp_path / "data.key", create=True))


def frame(dev, seq, t, wall=True, hr=720):
    return {"device": dev, "seq": seq, "kind": "vitals", "time": t, "ms": seq * 5000,
            "wall": wall, "received_at": T0 + 10 ** 6, "raw": b"\x01frame%d" % seq,
            "fields": {"hr_x10": hr, "spo2_x10": 970, "quality": 90, "beats": []}}


def test_frames_belong_to_the_patient_whose_assignment_covers_their_measurement_time(db_url,
                                                                                     tmp_path):
    st = store(db_url, tmp_path)
    a = st.admit("MRN-A", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="nurse")
    b = st.admit("MRN-B", "Roe", ["Rick"], "1961-07-30", "W3", "14", actor="nurse")
    st.assign(a["id"], DEV, "nurse", start=T0, end=T0 + 100)
    st.assign(b["id"], DEV, "nurse", start=T0 + 100)          # the device moves to B
    got = st.insert_frames([frame(DEV, 1, T0 - 5), frame(DEV, 2, T0), frame(DEV, 3, T0 + 99),
                            frame(DEV, 4, T0 + 100), frame(DEV, 5, 7, wall=False),
                            frame(DEV2, 1, T0 + 50)])
    assert got == ["stored"] * 6
    owner = {(r["device"], r["seq"]): r["patient_id"] for r in st.frames()}
    assert owner == {(DEV, 1): None, (DEV, 2): a["id"], (DEV, 3): a["id"], (DEV, 4): b["id"],
                     (DEV, 5): None, (DEV2, 1): None}
    assert [r["seq"] for r in st.frames(patient_id=a["id"])] == [2, 3]
    assert st.insert_frames([frame(DEV, 3, T0 + 99)]) == ["duplicate"]
    assert st.frames(patient_id=a["id"])[0]["hr_x10"] == 720  # decrypted on the way out
    st.close()


def test_a_device_is_on_one_patient_at_a_time_and_discharge_ends_it(db_url, tmp_path):
    st = store(db_url, tmp_path)
    a = st.admit("MRN-A", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="nurse")
    b = st.admit("MRN-B", "Roe", [], "1961-07-30", "W3", "14", actor="nurse")
    st.assign(a["id"], DEV, "nurse", start=T0)
    with pytest.raises(StoreError, match="already assigned to patient %s" % a["id"]):
        st.assign(b["id"], DEV, "nurse", start=T0 + 10)
    with pytest.raises(StoreError, match="already assigned"):
        st.assign(b["id"], DEV, "nurse", start=T0 - 100, end=T0 + 1)  # overlaps the start
    st.discharge(a["id"], "nurse", at=T0 + 50)
    assert st.assignments(pid=a["id"])[0]["end_time"] == T0 + 50
    st.assign(b["id"], DEV, "nurse", start=T0 + 50)            # free again
    with pytest.raises(StoreError, match="discharged"):
        st.assign(a["id"], DEV2, "nurse")
    with pytest.raises(StoreError, match="already admitted"):
        st.admit("MRN-B", "Roe", [], "1961-07-30", "W3", "14", actor="nurse")
    again = st.admit("MRN-A", "Doe", ["Jane"], "1950-02-03", "W4", "1", actor="nurse")
    assert again["id"] == a["id"] and again["ward"] == "W4"    # re-admission: the same person
    acts = [(e["action"], e["subject"]) for e in st.audit_log()]
    assert ("admit", a["id"]) in acts and ("discharge", a["id"]) in acts
    assert ("readmit", a["id"]) in acts and acts.count(("assign", b["id"])) == 1
    st.close()


def test_cli_admit_assign_discharge_and_mistakes(tmp_path, capsys, monkeypatch):
    from tools.provision import keys
    from tools.provision.registry import Registry
    monkeypatch.setenv("VITALNODE_USER", "nurse.kim")
    reg = tmp_path / "reg.sqlite"
    with Registry(reg) as r:
        r.begin(DEV, 1, keys.subkeys(keys.new_root(), DEV), "esp32", False)
        r.activate(DEV)
    db = str(tmp_path / "gw.sqlite")
    assert main(["admit", "--db", db, "--mrn", "MRN-9", "--family", "Doe", "--given", "Jane",
                 "--birth-date", "1950-02-03", "--ward", "W3", "--bed", "12"]) == 0
    assert "admitted" in capsys.readouterr().out
    assert main(["assign", "--db", db, "--registry", str(reg), "--patient", "MRN-9",
                 "--device", DEV.upper(), "--from", "2027-01-15T08:00Z"]) == 0
    assert "from 2027-01-15T08:00:00Z" in capsys.readouterr().out
    mistakes = [
        (["assign", "--db", db, "--registry", str(reg), "--patient", "MRN-9", "--device",
          "240ac4000fff"], "not in the registry"),
        (["assign", "--db", db, "--registry", str(reg), "--patient", "MRN-404", "--device", DEV],
         "no patient with id or MRN"),
        (["assign", "--db", db, "--registry", str(reg), "--patient", "MRN-9", "--device", DEV,
          "--from", "yesterday"], "not an ISO date-time"),
        (["admit", "--db", db, "--mrn", "MRN-8", "--family", "X", "--birth-date", "1950-13-03",
          "--ward", "W3", "--bed", "1"], "not YYYY-MM-DD"),
        (["erase", "--db", db, "--patient", "MRN-9"], "add --yes"),
        (["erase", "--db", db, "--patient", "MRN-9", "--yes"], "still admitted"),
        (["purge", "--db", db], "give --days"),
    ]
    for argv, words in mistakes:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["discharge", "--db", db, "--patient", "MRN-9", "--at", "2027-01-15T09:00Z"]) == 0
    assert main(["patients", "--db", db, "--all"]) == 0
    out = capsys.readouterr().out
    assert "Doe, Jane" in out and "(discharged)" in out and "to 2027-01-15T09:00:00Z" in out
    st = Store(db)
    assert {e["actor"] for e in st.audit_log()} == {"nurse.kim"}


def test_a_store_from_before_this_schema_is_migrated_and_sealed(tmp_path):
    """The first gateway kept plaintext frames in SQLite: opening it keeps
    every frame and seals them."""
    db = tmp_path / "old.sqlite"
    c = sqlite3.connect(db)
    c.executescript("""
CREATE TABLE frames (device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  time INTEGER NOT NULL, ms INTEGER NOT NULL, wall INTEGER NOT NULL, received_at REAL NOT NULL,
  fields TEXT NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (device, seq));
CREATE TABLE refused (id INTEGER PRIMARY KEY, at REAL NOT NULL, outcome TEXT NOT NULL,
  device TEXT, seq INTEGER, detail TEXT);""")
    c.execute("INSERT INTO frames VALUES (?, 1, 'vitals', ?, 5, 1, ?, ?, ?)",
              (DEV, T0, T0, json.dumps({"hr_x10": 777, "spo2_x10": 0}), b"raw-old-frame"))
    c.commit()
    c.close()
    st = Store(str(db))
    assert st.db.schema_version() == 4  # 4: the audit hash chain
    assert st.frames()[0]["hr_x10"] == 777 and st.raw(DEV, 1) == [b"raw-old-frame"]
    st.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("old.sqlite*") if p.suffix != ".key")
    assert b"777" not in blob and b"raw-old-frame" not in blob
