"""The gateway's store: frames, patients, device assignments, the audit
trail and API tokens, on SQLite or PostgreSQL (DATABASE_URL), with
patient-identifying data and vitals sealed (tools/gateway/crypto.py).

    st = Store(url_or_path)                 # migrates; key from the ring's usual places
    p = st.admit("MRN-1", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="nurse.kim")
    st.assign(p["id"], "240ac4000001", actor="nurse.kim")        # from now, open-ended
    st.insert_frames([...])                 # the gateway: "stored" / "duplicate" / "erased" each
    st.frames(patient_id=p["id"], kind="vitals")                   # decrypted rows
    st.discharge(p["id"], actor="nurse.kim")
    st.erase(p["id"], actor="dpo")          # right to erasure
    st.purge(retention_days=30, actor="ward")                      # retention

What is sealed: each frame's decoded fields and raw bytes; each patient's
MRN, names, birth date, ward and bed; the ward app's acknowledgement notes. What stays in clear so the store can
work: device ids, sequence numbers, frame kind and times, assignment
periods, the audit trail (which names patients only by their random id),
token hashes. A patient is found by MRN through a keyed hash (mrn_index).

Attribution: a frame belongs to the patient whose assignment of its
device covers the frame's measurement time; only frames with a trusted
wall-clock time (T_WALL) can be attributed, the others stay device-only.
A device has at most one assignment at any instant (assign() refuses an
overlap), so a frame belongs to at most one patient.

Every change to a patient (admit, assign, unassign, discharge, erase,
purge, access export) writes an audit row: who, when, what, the patient's
random id and counts - never names, MRN or values.

Guarantees: one frame per (device, seq), ever, across any number of
gateway workers (the primary key; ON CONFLICT DO NOTHING); an erased
patient's frames are refused if a node sends them again ("erased").
"""
import datetime
import json
import re
import time
import uuid

from tools.gateway.crypto import KeyProblem, KeyRing
from tools.gateway.db import Database, DatabaseError, IntegrityError


class StoreError(Exception):
    """A request the store refuses, with the reason in words."""


MIGRATIONS = []


def _migration(version, name):
    def reg(step):
        MIGRATIONS.append((version, name, step))
        return step
    return reg


MIGRATIONS.append((1, "frames and refusals", """
CREATE TABLE IF NOT EXISTS frames (
  device TEXT NOT NULL, seq {BIGINT} NOT NULL, kind TEXT NOT NULL,
  time {BIGINT} NOT NULL, ms {BIGINT} NOT NULL, wall INTEGER NOT NULL,
  received_at {FLOAT} NOT NULL, fields {BLOB} NOT NULL, raw {BLOB} NOT NULL,
  PRIMARY KEY (device, seq));
CREATE TABLE IF NOT EXISTS refused (
  id {ID}, at {FLOAT} NOT NULL, outcome TEXT NOT NULL,
  device TEXT, seq {BIGINT}, detail TEXT)
"""))

MIGRATIONS.append((2, "patients, assignments, audit, tokens", """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value {BLOB} NOT NULL);
CREATE TABLE patients (
  id TEXT PRIMARY KEY, mrn_index TEXT NOT NULL UNIQUE, data {BLOB} NOT NULL,
  admitted_at {FLOAT} NOT NULL, discharged_at {FLOAT});
CREATE TABLE assignments (
  id TEXT PRIMARY KEY, patient_id TEXT NOT NULL REFERENCES patients(id),
  device TEXT NOT NULL, start_time {BIGINT} NOT NULL, end_time {BIGINT},
  created_at {FLOAT} NOT NULL);
CREATE INDEX assignments_device ON assignments (device, start_time);
CREATE INDEX assignments_patient ON assignments (patient_id);
CREATE INDEX frames_time ON frames (device, time);
CREATE INDEX frames_received ON frames (received_at);
CREATE TABLE erased (device TEXT NOT NULL, start_time {BIGINT} NOT NULL, end_time {BIGINT} NOT NULL);
CREATE TABLE audit (
  id {ID}, at {FLOAT} NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT, detail TEXT);
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, role TEXT NOT NULL, scopes TEXT NOT NULL,
  patient_id TEXT, wards TEXT, issued_at {FLOAT} NOT NULL, expires_at {FLOAT} NOT NULL,
  revoked_at {FLOAT})
"""))


@_migration(3, "seal the plaintext frames of an earlier gateway")
def _seal_legacy(c, store):
    rows = c.execute("SELECT device, seq, fields, raw FROM frames").fetchall()
    n = 0
    for dev, seq, fields, raw in rows:
        fb = fields.encode() if isinstance(fields, str) else bytes(fields)
        if fb.startswith(b"vnE1"):
            continue
        c.execute("UPDATE frames SET fields = ?, raw = ? WHERE device = ? AND seq = ?",
                  (store._seal_fields(dev, seq, json.loads(fb)), store._seal_raw(dev, seq, raw),
                   dev, seq))
        n += 1
    if n:
        store.log("store: sealed %d plaintext frames of an earlier gateway" % n)


@_migration(4, "audit hash chain, append-only")
def _chain_audit(c, store):
    from tools.gateway import auditlog
    c.execute("ALTER TABLE audit ADD COLUMN hash TEXT")
    prev, last = auditlog.GENESIS, None
    for r in c.execute("SELECT id, at, actor, action, subject, detail FROM audit "
                       "ORDER BY id").fetchall():
        prev = auditlog.entry_hash(prev, *r[1:])
        c.execute("UPDATE audit SET hash = ? WHERE id = ?", (prev, r[0]))
        last = r[0]
    if last is not None:
        c.execute("INSERT INTO meta VALUES ('audit_head', ?)", (("%d:%s" % (last, prev)).encode(),))
    if c.db.dialect == "sqlite":
        for op in ("UPDATE", "DELETE"):
            c.execute("CREATE TRIGGER audit_no_%s BEFORE %s ON audit BEGIN SELECT RAISE(ABORT, "
                      "'the audit trail is append-only'); END" % (op.lower(), op))
    else:
        c.execute("CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$")
        c.execute("CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
                  "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")


_KEYCHECK = b"vitalnode key check"
_DEVICE = re.compile(r"^[0-9a-f]{12}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def _text(what, v, required=True):
    v = (v or "").strip()
    if not v:
        if required:
            raise StoreError("%s is required" % what)
        return None
    if not _TEXT.match(v):
        raise StoreError("%s %r: 1 to 64 printable characters" % (what, v[:70]))
    return v


def parse_time(text, what="time"):
    """Unix seconds from an ISO date-time ('2026-03-01T08:00', with an
    offset or Z; no offset means UTC) or from a number."""
    if isinstance(text, (int, float)):
        return int(text)
    t = str(text).strip()
    if re.fullmatch(r"\d{9,11}", t):
        return int(t)
    try:
        d = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise StoreError("%s %r is not an ISO date-time like 2026-03-01T08:00Z" % (what, t))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp())


def iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, url, key=None, log=None):
        """url: postgresql://..., sqlite:///path, a path or ':memory:'.
        key: a KeyRing; default: VITALNODE_DATA_KEY / _FILE, else
        `<SQLite file>.key` (created with a new store)."""
        self.log = log or (lambda s: None)
        self.db = Database.open(url)
        self.url = self.db.display
        self.ring = self._ring(key)
        self.db.migrate(MIGRATIONS, self)
        self._check_key()

    def _ring(self, key):
        if key is not None:
            return key
        if self.db.dialect == "sqlite" and self.db.path is None:
            return KeyRing.ephemeral()  # :memory: - nothing is at rest
        default = None
        if self.db.path is not None:
            default = self.db.path.with_name(self.db.path.name + ".key")
        try:
            return KeyRing.for_store(default)
        except KeyProblem:
            if default is None or default.exists() or self._sealed_before():
                raise
            return KeyRing.for_store(default, create=True)  # a new store: a new key

    def _sealed_before(self):
        try:
            return "meta" in self.db.tables() and self.db.one(
                "SELECT 1 FROM meta WHERE name = 'keycheck'") is not None
        except DatabaseError:
            raise
        except Exception:  # noqa: BLE001 - an unreadable store reports itself on migrate
            return False

    def _check_key(self):
        r = self.db.one("SELECT value FROM meta WHERE name = 'keycheck'")
        if r is None:
            with self.db.tx() as c:
                c.execute("INSERT INTO meta VALUES ('keycheck', ?)",
                          (self.ring.seal(_KEYCHECK, b"meta.keycheck"),))
            return
        try:
            self.ring.open(r[0], b"meta.keycheck")
        except KeyProblem as e:
            raise KeyProblem("the data key (%s) does not open %s: %s"
                             % (self.ring.source, self.url, e))

    def close(self):
        self.db.close()

    # -- sealing
    def _seal_fields(self, dev, seq, fields):
        return self.ring.seal_json(fields, ("frames.fields|%s|%d" % (dev, seq)).encode())

    def _seal_raw(self, dev, seq, raw):
        return self.ring.seal(bytes(raw), ("frames.raw|%s|%d" % (dev, seq)).encode())

    def _open_fields(self, dev, seq, blob):
        return self.ring.open_json(blob, ("frames.fields|%s|%d" % (dev, seq)).encode())

    def _seal_patient(self, pid, data):
        return self.ring.seal_json(data, ("patients.data|%s" % pid).encode())

    def _open_patient(self, pid, blob):
        return self.ring.open_json(blob, ("patients.data|%s" % pid).encode())

    # the ward app's acknowledgement notes (free text: it may name the patient)
    def seal_note(self, alert_id, text):
        return self.ring.seal(text, ("ward_alerts.note|%s" % alert_id).encode())

    def open_note(self, alert_id, blob):
        return self.ring.open(blob, ("ward_alerts.note|%s" % alert_id).encode()).decode()

    def _ward_app(self, c):
        """The ward app's tables share this store (tools/wardapp/schema.py)."""
        return c.execute("SELECT 1 FROM schema_migrations WHERE version = 101").fetchone() \
            is not None

    # -- audit
    _AUDIT_LOCK = 0x766e6175  # PostgreSQL: one writer of the chain at a time

    def audit(self, actor, action, subject=None, detail=None, c=None):
        """Append one entry to the hash-chained audit trail
        (tools/gateway/auditlog.py), in transaction `c` or a new one."""
        if c is None:
            with self.db.tx() as c2:
                return self.audit(actor, action, subject, detail, c2)
        from tools.gateway.auditlog import GENESIS, entry_hash
        if self.db.dialect == "postgresql":
            c.execute("SELECT pg_advisory_xact_lock(%d)" % self._AUDIT_LOCK)
        r = c.execute("SELECT value FROM meta WHERE name = 'audit_head'").fetchone()
        head = bytes(r[0]).decode() if r else None
        prev = head.split(":", 1)[1] if head else GENESIS
        at, actor = time.time(), actor or "unknown"
        h = entry_hash(prev, at, actor, action, subject, detail)
        rid = c.execute("INSERT INTO audit (at, actor, action, subject, detail, hash) VALUES "
                        "(?, ?, ?, ?, ?, ?) RETURNING id",
                        (at, actor, action, subject, detail, h)).fetchone()[0]
        new = ("%d:%s" % (rid, h)).encode()
        if head is None:
            c.execute("INSERT INTO meta VALUES ('audit_head', ?)", (new,))
        else:
            c.execute("UPDATE meta SET value = ? WHERE name = 'audit_head'", (new,))
        return rid

    def audit_log(self, subject=None, actor=None, since_id=None, limit=None, with_hash=False,
                  newest_first=False):
        """Audit entries in id order, or newest first (dicts; `hash` too
        with with_hash); at most `limit`."""
        cols = ("id", "at", "actor", "action", "subject", "detail") + (("hash",) if with_hash
                                                                        else ())
        q, cond, args = "SELECT %s FROM audit" % ", ".join(cols), [], []
        if subject:
            cond.append("subject = ?")
            args.append(subject)
        if actor:
            cond.append("actor = ?")
            args.append(actor)
        if since_id is not None:
            cond.append("id > ?")
            args.append(int(since_id))
        if cond:
            q += " WHERE " + " AND ".join(cond)
        q += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit:
            q += " LIMIT %d" % int(limit)
        return [dict(zip(cols, r)) for r in self.db.query(q, args)]

    def audit_head(self):
        """(id, hash) of the newest audit entry, or None."""
        r = self.db.one("SELECT value FROM meta WHERE name = 'audit_head'")
        if r is None:
            return None
        i, h = bytes(r[0]).decode().split(":", 1)
        return int(i), h

    def audit_verify(self, anchor=None):
        """None if the audit chain holds, else its first broken link."""
        from tools.gateway.auditlog import verify
        return verify(self.audit_log(with_hash=True), self.audit_head(), anchor)

    # -- frames
    def insert_frames(self, items):
        """Store decoded, verified frames in one transaction. items: dicts
        with device, seq, kind, time, ms, wall, received_at, fields, raw.
        Returns one outcome per item: 'stored', 'duplicate' (that
        (device, seq) is already stored) or 'erased' (it falls in an
        erased patient's period)."""
        out = []
        with self.db.tx() as c:
            erased = {}
            if any(it["wall"] for it in items):
                for dev, a, b in c.execute("SELECT device, start_time, end_time FROM erased"):
                    erased.setdefault(dev, []).append((a, b))
            for it in items:
                dev, seq = it["device"], it["seq"]
                if it["wall"] and any(a <= it["time"] < b for a, b in erased.get(dev, ())):
                    out.append("erased")
                    continue
                cur = c.execute(
                    "INSERT INTO frames (device, seq, kind, time, ms, wall, received_at, fields, raw)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING",
                    (dev, seq, it["kind"], it["time"], it["ms"], int(bool(it["wall"])),
                     it["received_at"], self._seal_fields(dev, seq, it["fields"]),
                     self._seal_raw(dev, seq, it["raw"])))
                out.append("stored" if cur.rowcount == 1 else "duplicate")
        return out

    REFUSED_MAX = 20000  # rows the refusal log keeps; the oldest go (the gateway aggregates)

    def refuse(self, items):
        """Log refusals: (at, outcome, device, seq, detail) tuples. The log
        keeps the newest REFUSED_MAX rows: whatever arrives, it is bounded."""
        if not items:
            return
        with self.db.tx() as c:
            for it in items:
                c.execute("INSERT INTO refused (at, outcome, device, seq, detail) VALUES "
                          "(?, ?, ?, ?, ?)", it)
            c.execute("DELETE FROM refused WHERE id <= (SELECT MAX(id) FROM refused) - ?",
                      (self.REFUSED_MAX,))

    def max_seq(self, device):
        """The newest stored seq of `device`, or None."""
        r = self.db.one("SELECT MAX(seq) FROM frames WHERE device = ?", (device,))
        return r[0] if r and r[0] is not None else None

    def refusals(self, outcome=None):
        q, args = "SELECT at, outcome, device, seq, detail FROM refused", ()
        if outcome:
            q, args = q + " WHERE outcome = ?", (outcome,)
        return [dict(zip(("at", "outcome", "device", "seq", "detail"), r))
                for r in self.db.query(q + " ORDER BY id", args)]

    _COLS = ("device", "seq", "kind", "time", "ms", "wall", "received_at")

    def frames(self, device=None, kind=None, patient_id=None, since=None, until=None, after=None,
               limit=None, order="device"):
        """Decrypted rows (dicts: the columns, the decoded fields and
        patient_id or None). since/until: measurement time, Unix s, [since,
        until). after: (time, device, seq) keyset for order='time'."""
        join = "JOIN" if patient_id else "LEFT JOIN"
        q = ("SELECT f.device, f.seq, f.kind, f.time, f.ms, f.wall, f.received_at, f.fields, "
             "a.patient_id FROM frames f %s assignments a ON a.device = f.device AND f.wall = 1 "
             "AND f.time >= a.start_time AND (a.end_time IS NULL OR f.time < a.end_time)" % join)
        cond, args = [], []
        if device:
            cond.append("f.device = ?")
            args.append(device)
        if kind:
            cond.append("f.kind = ?")
            args.append(kind)
        if patient_id:
            cond.append("a.patient_id = ?")
            args.append(patient_id)
        if since is not None:
            cond += ["f.wall = 1", "f.time >= ?"]
            args.append(int(since))
        if until is not None:
            cond += ["f.wall = 1", "f.time < ?"]
            args.append(int(until))
        if after is not None:
            t, d, s = after
            cond.append("(f.time > ? OR (f.time = ? AND (f.device > ? OR (f.device = ? AND f.seq > ?))))")
            args += [t, t, d, d, s]
        if cond:
            q += " WHERE " + " AND ".join(cond)
        q += " ORDER BY f.time, f.device, f.seq" if order == "time" else " ORDER BY f.device, f.seq"
        if limit:
            q += " LIMIT %d" % int(limit)
        out = []
        for r in self.db.query(q, args):
            row = dict(zip(self._COLS, r[:7]))
            row["wall"] = int(row["wall"])
            row.update(self._open_fields(r[0], r[1], r[7]))
            row["patient_id"] = r[8]
            out.append(row)
        return out

    def latest(self, device, kind=None):
        """(kind, fields) of a device's newest frame (of `kind`), or None."""
        q, args = "SELECT kind, seq, fields FROM frames WHERE device = ?", [device]
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        r = self.db.one(q + " ORDER BY seq DESC LIMIT 1", args)
        return (r[0], self._open_fields(device, r[1], r[2])) if r else None

    def received(self, after, kind=None, limit=5000, skip=()):
        """Decrypted rows (as frames()) received after `after` (Unix s,
        the gateway's clock), oldest first: what a live view has not seen.
        skip: (device, seq) pairs the caller already has (not decrypted,
        not returned)."""
        q = ("SELECT device, seq, kind, time, ms, wall, received_at, fields FROM frames "
             "WHERE received_at > ?")
        args = [float(after)]
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        out = []
        for r in self.db.query(q + " ORDER BY received_at, device, seq LIMIT %d" % int(limit), args):
            if (r[0], r[1]) in skip:
                continue
            row = dict(zip(self._COLS, r[:7]))
            row.update(self._open_fields(r[0], r[1], r[7]))
            out.append(row)
        return out

    def newest(self, device, kind, n=1):
        """The `n` newest rows (as received()) of one device and kind, newest first."""
        out = []
        for r in self.db.query("SELECT device, seq, kind, time, ms, wall, received_at, fields FROM "
                               "frames WHERE device = ? AND kind = ? ORDER BY seq DESC LIMIT %d"
                               % int(n), (device, kind)):
            row = dict(zip(self._COLS, r[:7]))
            row.update(self._open_fields(r[0], r[1], r[7]))
            out.append(row)
        return out

    def devices_seen(self):
        """{device: newest received_at} over every stored frame."""
        return {r[0]: r[1] for r in self.db.query(
            "SELECT device, MAX(received_at) FROM frames GROUP BY device")}

    def refusal_counts(self):
        """{device: {outcome: n}} of the refused frames that named a device."""
        out = {}
        for dev, outcome, n in self.db.query("SELECT device, outcome, COUNT(*) FROM refused WHERE "
                                             "device IS NOT NULL GROUP BY device, outcome"):
            out.setdefault(dev, {})[outcome] = n
        return out

    def raw(self, device, limit):
        return [self.ring.open(r[1], ("frames.raw|%s|%d" % (device, r[0])).encode())
                for r in self.db.query("SELECT seq, raw FROM frames WHERE device = ? ORDER BY seq "
                                       "LIMIT ?", (device, int(limit)))]

    def count_frames(self):
        return self.db.one("SELECT COUNT(*) FROM frames")[0]

    def device_version(self, device):
        """The firmware version code of a device's newest status frame, or None."""
        got = self.latest(device, "status")
        return got[1].get("version_code") if got else None

    # -- patients
    def _patient_row(self, r):
        pid, data, admitted, discharged = r
        d = self._open_patient(pid, data)
        d.update(id=pid, admitted_at=admitted, discharged_at=discharged)
        return d

    def admit(self, mrn, family, given, birth_date, ward, bed, actor, gender=None):
        """Admit a patient (or re-admit a discharged one, same id)."""
        mrn = _text("MRN", mrn)
        family = _text("family name", family)
        given = [_text("given name", g) for g in (given or []) if g and g.strip()]
        try:
            bd = datetime.date.fromisoformat(str(birth_date).strip())
        except ValueError:
            raise StoreError("birth date %r is not YYYY-MM-DD" % (birth_date,))
        if bd > datetime.date.today() or bd.year < 1880:
            raise StoreError("birth date %s is not plausible" % bd)
        if gender not in (None, "male", "female", "other", "unknown"):
            raise StoreError("gender %r: male, female, other or unknown" % gender)
        data = {"mrn": mrn, "family": family, "given": given, "birth_date": bd.isoformat(),
                "ward": _text("ward", ward), "bed": _text("bed", bed)}
        if gender:
            data["gender"] = gender
        idx = self.ring.index(mrn)
        now = time.time()
        with self.db.tx() as c:
            r = c.execute("SELECT id, discharged_at FROM patients WHERE mrn_index = ?",
                          (idx,)).fetchone()
            if r is not None and r[1] is None:
                raise StoreError("a patient with this MRN is already admitted (id %s)" % r[0])
            pid = r[0] if r else str(uuid.uuid4())
            if r:
                c.execute("UPDATE patients SET data = ?, admitted_at = ?, discharged_at = NULL "
                          "WHERE id = ?", (self._seal_patient(pid, data), now, pid))
            else:
                c.execute("INSERT INTO patients VALUES (?, ?, ?, ?, NULL)",
                          (pid, idx, self._seal_patient(pid, data), now))
            self.audit(actor, "readmit" if r else "admit", pid, None, c)
        return self.patient(pid)

    def patient(self, pid):
        r = self.db.one("SELECT id, data, admitted_at, discharged_at FROM patients WHERE id = ?",
                        (str(pid),))
        return self._patient_row(r) if r else None

    def find_patient(self, ref):
        """A patient by id or by MRN, or None."""
        p = self.patient(ref) if re.fullmatch(r"[0-9a-f-]{36}", str(ref)) else None
        if p is None:
            r = self.db.one("SELECT id, data, admitted_at, discharged_at FROM patients WHERE "
                            "mrn_index = ?", (self.ring.index(str(ref)),))
            p = self._patient_row(r) if r else None
        return p

    def patients(self, include_discharged=False):
        q = "SELECT id, data, admitted_at, discharged_at FROM patients"
        if not include_discharged:
            q += " WHERE discharged_at IS NULL"
        return sorted((self._patient_row(r) for r in self.db.query(q)),
                      key=lambda p: (p["ward"], p["bed"], p["id"]))

    def _need_patient(self, pid, admitted=True):
        p = self.patient(pid)
        if p is None:
            raise StoreError("no patient %s" % pid)
        if admitted and p["discharged_at"] is not None:
            raise StoreError("patient %s is discharged" % pid)
        return p

    def assign(self, pid, device, actor, start=None, end=None):
        """Assign `device` to a patient over [start, end) (Unix s; start
        default now, end default open). Refused if it overlaps another
        assignment of that device."""
        device = str(device).lower()
        if not _DEVICE.match(device):
            raise StoreError("device id %r: 12 hex digits" % device)
        self._need_patient(pid)
        start = int(time.time()) if start is None else int(start)
        if end is not None and int(end) <= start:
            raise StoreError("the assignment ends before it starts")
        big = 2 ** 62
        with self.db.tx() as c:
            for _, other, a, b in c.execute(
                    "SELECT id, patient_id, start_time, end_time FROM assignments WHERE device = ?",
                    (device,)).fetchall():
                if a < (big if end is None else int(end)) and start < (big if b is None else b):
                    raise StoreError("device %s is already assigned %s from %s%s; unassign it first"
                                     % (device, "to this patient" if other == pid else
                                        "to patient %s" % other, iso(a),
                                        "" if b is None else " to %s" % iso(b)))
            aid = str(uuid.uuid4())
            c.execute("INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
                      (aid, pid, device, start, None if end is None else int(end), time.time()))
            self.audit(actor, "assign", pid, "device %s from %s%s" % (
                device, iso(start), "" if end is None else " to %s" % iso(end)), c)
        return {"id": aid, "patient_id": pid, "device": device, "start_time": start,
                "end_time": end}

    def assignments(self, pid=None, device=None):
        q, cond, args = ("SELECT id, patient_id, device, start_time, end_time FROM assignments",
                         [], [])
        if pid:
            cond.append("patient_id = ?")
            args.append(pid)
        if device:
            cond.append("device = ?")
            args.append(device)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        return [dict(zip(("id", "patient_id", "device", "start_time", "end_time"), r))
                for r in self.db.query(q + " ORDER BY start_time", args)]

    def unassign(self, device, actor, at=None):
        """End the device's open assignment at `at` (default now)."""
        at = int(time.time()) if at is None else int(at)
        with self.db.tx() as c:
            r = c.execute("SELECT id, patient_id, start_time FROM assignments WHERE device = ? "
                          "AND end_time IS NULL", (device,)).fetchone()
            if r is None:
                raise StoreError("device %s has no open assignment" % device)
            if at <= r[2]:
                raise StoreError("the assignment started at %s, after %s" % (iso(r[2]), iso(at)))
            c.execute("UPDATE assignments SET end_time = ? WHERE id = ?", (at, r[0]))
            self.audit(actor, "unassign", r[1], "device %s at %s" % (device, iso(at)), c)
        return r[1]

    def discharge(self, pid, actor, at=None):
        """End the patient's open assignments at `at` and discharge them."""
        self._need_patient(pid)
        at = int(time.time()) if at is None else int(at)
        with self.db.tx() as c:
            n = 0
            for aid, start in c.execute("SELECT id, start_time FROM assignments WHERE patient_id = ? "
                                        "AND end_time IS NULL", (pid,)).fetchall():
                c.execute("UPDATE assignments SET end_time = ? WHERE id = ?", (max(at, start + 1),
                                                                             aid))
                n += 1
            c.execute("UPDATE patients SET discharged_at = ? WHERE id = ?", (float(at), pid))
            self.audit(actor, "discharge", pid, "%d open assignment(s) ended" % n, c)

    # -- compliance
    def _delete_patient(self, c, pid):
        """Delete a patient, their assignments and the frames those cover;
        the periods are kept (device and times only) so a resent frame
        stays out. Returns (frames, assignments) deleted."""
        frames = 0
        wins = c.execute("SELECT device, start_time, end_time FROM assignments WHERE patient_id = ?",
                         (pid,)).fetchall()
        for dev, a, b in wins:
            b = b if b is not None else int(time.time()) + 1
            cur = c.execute("DELETE FROM frames WHERE device = ? AND wall = 1 AND time >= ? AND "
                            "time < ?", (dev, a, b))
            frames += max(cur.rowcount, 0)
            c.execute("INSERT INTO erased VALUES (?, ?, ?)", (dev, a, b))
            if self._ward_app(c):  # the alerts raised in that period, with their notes
                c.execute("DELETE FROM ward_alerts WHERE device = ? AND COALESCE(measured_at, "
                          "raised_at) >= ? AND COALESCE(measured_at, raised_at) < ?", (dev, a, b))
        c.execute("DELETE FROM assignments WHERE patient_id = ?", (pid,))
        c.execute("DELETE FROM tokens WHERE patient_id = ?", (pid,))
        c.execute("DELETE FROM patients WHERE id = ?", (pid,))
        return frames, len(wins)

    def erase(self, pid, actor):
        """Right to erasure: the patient, their assignments and every frame
        attributed to them go; the audit keeps the fact (random id, counts)."""
        p = self._need_patient(pid, admitted=False)
        if p["discharged_at"] is None:
            raise StoreError("patient %s is still admitted: discharge first" % pid)
        with self.db.tx() as c:
            frames, wins = self._delete_patient(c, pid)
            self.audit(actor, "erase", pid, "%d frames, %d assignments, demographics deleted"
                       % (frames, wins), c)
        self._compact()
        return {"frames": frames, "assignments": wins}

    def purge(self, retention_days, actor, now=None):
        """Retention: delete frames and refusals received more than
        `retention_days` ago, patients discharged that long ago (with their
        assignments), expired tokens. The audit trail is kept."""
        if not retention_days or retention_days <= 0:
            raise StoreError("retention must be a positive number of days")
        now = time.time() if now is None else now
        cut = now - retention_days * 86400.0
        with self.db.tx() as c:
            pats = [r[0] for r in c.execute("SELECT id FROM patients WHERE discharged_at IS NOT NULL "
                                            "AND discharged_at < ?", (cut,)).fetchall()]
            pf = 0
            for pid in pats:
                pf += self._delete_patient(c, pid)[0]
                self.audit(actor, "purge-patient", pid, "discharged over %g days ago"
                           % retention_days, c)
            f = c.execute("DELETE FROM frames WHERE received_at < ?", (cut,)).rowcount
            r = c.execute("DELETE FROM refused WHERE at < ?", (cut,)).rowcount
            t = c.execute("DELETE FROM tokens WHERE expires_at < ?", (cut,)).rowcount
            counts = {"frames": f + pf, "patients": len(pats), "refusals": r, "tokens": t}
            self.audit(actor, "purge", None, "retention %g days, before %s: %s" % (
                retention_days, iso(cut), json.dumps(counts, sort_keys=True)), c)
        self._compact()
        return counts

    def _compact(self):
        if self.db.dialect == "sqlite" and self.db.path is not None:
            self.db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rotate_key(self, ring):
        """Re-seal every sealed value with ring.current (ring must also hold
        the keys in use) and recompute the MRN index; one transaction."""
        old = self.ring
        self.ring = ring
        try:
            with self.db.tx() as c:
                n = 0
                for dev, seq, fields, raw in c.execute(
                        "SELECT device, seq, fields, raw FROM frames").fetchall():
                    f = self._open_fields(dev, seq, fields)
                    r = ring.open(raw, ("frames.raw|%s|%d" % (dev, seq)).encode())
                    c.execute("UPDATE frames SET fields = ?, raw = ? WHERE device = ? AND seq = ?",
                              (self._seal_fields(dev, seq, f), self._seal_raw(dev, seq, r), dev, seq))
                    n += 1
                for pid, data in c.execute("SELECT id, data FROM patients").fetchall():
                    d = self._open_patient(pid, data)
                    c.execute("UPDATE patients SET data = ?, mrn_index = ? WHERE id = ?",
                              (self._seal_patient(pid, d), ring.index(d["mrn"]), pid))
                if self._ward_app(c):
                    for aid, note in c.execute("SELECT id, note FROM ward_alerts WHERE note IS "
                                               "NOT NULL").fetchall():
                        c.execute("UPDATE ward_alerts SET note = ? WHERE id = ?",
                                  (self.seal_note(aid, old.open(note, (
                                      "ward_alerts.note|%s" % aid).encode()).decode()), aid))
                c.execute("UPDATE meta SET value = ? WHERE name = 'keycheck'",
                          (ring.seal(_KEYCHECK, b"meta.keycheck"),))
                self.audit("key-rotation", "rotate-key", None, "%d frames re-sealed under key %s"
                           % (n, ring.current), c)
        except BaseException:
            self.ring = old
            raise
        self._compact()
        return n


__all__ = ["Store", "StoreError", "KeyProblem", "DatabaseError", "IntegrityError", "parse_time",
           "iso", "MIGRATIONS"]
