"""The audit trail is append-only and hash-chained: every way of tampering
with the stored rows is caught by `audit verify`, which names the first
broken link; the trail exports for an auditor."""
import json
import sqlite3
import subprocess
import sys

import pytest

from tools.gateway.store import Store
from tools.paths import ROOT


def _trail(tmp_path, n=6):
    db = tmp_path / "gw.sqlite"
    st = Store(db)
    for i in range(n):
        st.audit("nurse.kim", "view-patient", "p-%d" % i, "trend 6h")
    return st, db


def _raw(db):
    """The database as someone with file access sees it: the triggers
    that keep the trail append-only dropped first."""
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("DROP TRIGGER audit_no_update")
    c.execute("DROP TRIGGER audit_no_delete")
    return c


def _verify(db, *extra):
    return subprocess.run([sys.executable, "-m", "tools.gateway", "audit", "verify", "--db",
                           str(db), *extra], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_an_intact_trail_verifies(tmp_path):
    st, db = _trail(tmp_path)
    r = _verify(db)
    assert r.returncode == 0 and "intact: 6 entries" in r.stdout, r.stdout + r.stderr


def test_the_store_refuses_edits_and_deletes(tmp_path):
    st, db = _trail(tmp_path)
    c = sqlite3.connect(db)
    for sql in ("UPDATE audit SET actor = 'x' WHERE id = 2", "DELETE FROM audit WHERE id = 2"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            c.execute(sql)


@pytest.mark.parametrize("tamper, first_bad", [
    ("UPDATE audit SET actor = 'mallory' WHERE id = 3", "entry 3"),
    ("UPDATE audit SET detail = 'trend 24h' WHERE id = 2", "entry 2"),
    ("UPDATE audit SET at = at - 60 WHERE id = 4", "entry 4"),
    ("DELETE FROM audit WHERE id = 3", "entry 4"),
    ("DELETE FROM audit WHERE id = 1", "entry 2"),
    ("DELETE FROM audit WHERE id = 6", "cut off the end"),
    # reorder: entries 2 and 3 swap places (their ids exchanged)
    ("UPDATE audit SET id = -2 WHERE id = 2; UPDATE audit SET id = 2 WHERE id = 3; "
     "UPDATE audit SET id = 3 WHERE id = -2", "entry 2"),
    # an entry inserted by hand between two, with a hash copied from its neighbour
    ("UPDATE audit SET id = id + 10 WHERE id >= 4; INSERT INTO audit (id, at, actor, action, "
     "subject, detail, hash) SELECT 4, at, actor, action, subject, detail, hash FROM audit "
     "WHERE id = 3", "entry 4"),
])
def test_each_tampering_is_caught_at_its_first_broken_link(tmp_path, tamper, first_bad):
    st, db = _trail(tmp_path)
    st.close()
    c = _raw(db)
    for sql in tamper.split("; "):
        c.execute(sql)
    c.close()
    r = _verify(db)
    assert r.returncode == 1 and "BROKEN" in r.stdout and first_bad in r.stdout, r.stdout


def test_a_recomputed_chain_is_caught_against_a_kept_head(tmp_path):
    """Someone who rewrites an entry and recomputes every hash after it
    leaves a consistent chain; the head an auditor kept exposes it."""
    from tools.gateway import auditlog
    st, db = _trail(tmp_path)
    out = tmp_path / "export.json"
    r = subprocess.run([sys.executable, "-m", "tools.gateway", "audit", "export", "--db", str(db),
                        "--out", str(out), "--by", "auditor.ann"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["chain_ok"] and len(doc["entries"]) == 6 and doc["head"] in r.stdout
    # the export re-verifies independently of the store
    assert auditlog.verify(doc["entries"], tuple([int(doc["head"].split(":")[0]),
                                                   doc["head"].split(":")[1]])) is None
    st.close()
    c = _raw(db)
    rows = c.execute("SELECT id, at, actor, action, subject, detail FROM audit ORDER BY id").fetchall()
    prev = auditlog.GENESIS
    for rid, at, actor, action, subject, detail in rows:
        if rid == 2:
            actor = "someone.else"
        prev = auditlog.entry_hash(prev, at, actor, action, subject, detail)
        c.execute("UPDATE audit SET actor = ?, hash = ? WHERE id = ?", (actor, prev, rid))
        last = rid
    c.execute("UPDATE meta SET value = ? WHERE name = 'audit_head'", (("%d:%s" % (last, prev)).encode(),))
    c.close()
    assert _verify(db).returncode == 0  # consistent on its own
    r = _verify(db, "--anchor", doc["head"])
    assert r.returncode == 1 and "kept head" in r.stdout


def test_existing_audit_command_and_typos(tmp_path):
    st, db = _trail(tmp_path, 2)
    r = subprocess.run([sys.executable, "-m", "tools.gateway", "audit", "--db", str(db)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count("view-patient") == 2
    r = _verify(db, "--anchor", "nonsense")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = _verify(tmp_path / "typo.sqlite")  # no store there: said so, none made
    assert r.returncode == 2 and "no store at" in r.stderr and not (tmp_path / "typo.sqlite").exists()


def test_the_chain_and_its_guard_on_both_databases(db_url, tmp_path):
    """SQLite and PostgreSQL: the same chain, the same refusal of edits."""
    from tools.gateway.crypto import KeyRing
    st = Store(db_url, key=KeyRing.load(tmp_path / "data.key", create=True))
    for i in range(3):
        st.audit("nurse.kim", "view-patient", "p-%d" % i, None)
    assert st.audit_verify() is None and st.audit_head()[0] == st.audit_log()[-1]["id"]
    with pytest.raises(Exception, match="append-only"):
        with st.db.tx() as c:
            c.execute("UPDATE audit SET actor = 'x'")
    with pytest.raises(Exception, match="append-only"):
        with st.db.tx() as c:
            c.execute("DELETE FROM audit")
    assert [e["actor"] for e in st.audit_log()] == ["nurse.kim"] * 3
    st.close()
