"""The gateway's judgement of one MQTT message, and its SQLite store.

    gw = Gateway(registry_path, db_path)
    outcome = gw.handle("vn/240ac4000001/tm", payload)   # "stored", "duplicate", ...
    gw.counts        # per outcome; gw.vitals(device) for the newest reading

Checks in order (the first that fails names the outcome; nothing is stored):
  malformed  not a frame of a version this gateway decodes (firmware/framedec.py)
  topic      the frame's device id is not the topic's: a node publishing for
             another (the broker's ACL already refuses it; this is the second wall)
  unknown    device not in the registry
  revoked    device revoked (registry) - refused even with a valid tag
  forged     the HMAC tag does not verify with the device's telemetry sub-key
  duplicate  (device, seq) already stored: a QoS 1 redelivery, a node's resend
             after a reboot, or a replay; the stored copy stands
then "stored". Every refusal is counted and logged with the device and seq.
For "stored" and "duplicate" (the gateway has the frame), ack() makes the
acknowledgement the node waits for before it deletes the frame
(firmware/frames.ack, published on vn/<id>/ack by tools/gateway/mqtt.py).
Guarantees: one row per (device, seq), ever (SQLite UNIQUE); handle()
never raises for any payload (the fuzz test feeds it 10,000); one SQLite
connection, used under one lock (the MQTT thread stores while readers
query: unlocked, sqlite3 reports a duplicate as a generic DatabaseError).
Non-guarantee: frames signed with an earlier key generation are refused
as forged after a rotation (the node re-signs nothing; its queue drains
before rotation in practice).
"""
import hashlib
import hmac
import json
import sqlite3
import threading
import time

from tools import hostshims

hostshims.install()
from firmware import framedec, frames  # noqa: E402  (device code, on CPython)
from tools.provision.registry import Registry, RegistryError  # noqa: E402

OUTCOMES = ("stored", "duplicate", "malformed", "topic", "unknown", "revoked", "forged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
  device TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  time INTEGER NOT NULL, ms INTEGER NOT NULL, wall INTEGER NOT NULL,
  received_at REAL NOT NULL, fields TEXT NOT NULL, raw BLOB NOT NULL,
  PRIMARY KEY (device, seq));
CREATE TABLE IF NOT EXISTS refused (
  id INTEGER PRIMARY KEY, at REAL NOT NULL, outcome TEXT NOT NULL,
  device TEXT, seq INTEGER, detail TEXT);
"""


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if k in ("device", "tag"):
            continue
        out[k] = [list(b) for b in v] if k == "beats" else v
    return out


class Gateway:
    def __init__(self, registry_path, db_path, log=None):
        self._registry_path = registry_path
        self._local = threading.local()  # sqlite: one registry connection per thread
        self.lock = threading.RLock()  # every use of self.db
        self.db = sqlite3.connect(str(db_path), check_same_thread=False)
        self.db.executescript(_SCHEMA)
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.log = log or (lambda s: None)
        self._keys = {}

    @property
    def registry(self):
        r = getattr(self._local, "registry", None)
        if r is None:
            r = self._local.registry = Registry(self._registry_path)
        return r

    def close(self):
        self.db.close()

    def _refuse(self, outcome, device, seq, detail):
        self.counts[outcome] += 1
        with self.db:
            self.db.execute("INSERT INTO refused (at, outcome, device, seq, detail) VALUES "
                            "(?, ?, ?, ?, ?)", (time.time(), outcome, device, seq, detail))
        if outcome != "duplicate":
            self.log("gateway: refused %s frame %s/%s: %s" % (outcome, device, seq, detail))
        return outcome

    def handle(self, topic, payload):
        try:
            with self.lock:
                return self._handle(topic, bytes(payload))
        except Exception as e:  # noqa: BLE001 - a message must never stop the gateway
            with self.lock:
                return self._refuse("malformed", None, None, "unexpected: %r" % (e,))

    def _handle(self, topic, payload):
        try:
            d = framedec.decode(payload)
        except (frames.FrameError, ValueError, KeyError, IndexError) as e:
            return self._refuse("malformed", None, None, str(e)[:200])
        dev = d["device"].hex()
        seq = d["seq"]
        parts = topic.split("/") if isinstance(topic, str) else []
        if len(parts) != 3 or parts[0] != "vn" or parts[2] != "tm" or parts[1] != dev:
            return self._refuse("topic", dev, seq, "frame of %s on topic %r" % (dev, topic))
        info = self.registry.device(dev)
        if info is None:
            return self._refuse("unknown", dev, seq, "not in the registry")
        if info["status"] != "active":
            return self._refuse("revoked", dev, seq, "device is %s" % info["status"])
        try:
            key = self.registry.key(dev, "telemetry")
        except RegistryError as e:
            return self._refuse("unknown", dev, seq, str(e))
        body, tag = framedec.split(payload)
        want = hmac.new(key, body, hashlib.sha256).digest()[:frames.TAG_LEN]
        if not hmac.compare_digest(want, tag):
            return self._refuse("forged", dev, seq, "tag does not verify")
        try:
            with self.db:
                self.db.execute("INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (dev, seq, d["kind"], d["time"], d["ms"], int(d["wall"]),
                                 time.time(), json.dumps(_jsonable(d)), payload))
        except sqlite3.IntegrityError:
            return self._refuse("duplicate", dev, seq, "already stored")
        self.counts["stored"] += 1
        return "stored"

    def latest(self, device):
        """(kind, fields) of a device's newest frame, or None."""
        with self.lock:
            r = self.db.execute("SELECT kind, fields FROM frames WHERE device = ? ORDER BY seq DESC "
                                "LIMIT 1", (device,)).fetchone()
        return (r[0], json.loads(r[1])) if r else None

    def raw(self, device, limit):
        """The first `limit` stored frames of a device, as received."""
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT raw FROM frames WHERE device = ? ORDER BY "
                                                  "seq LIMIT ?", (device, limit))]

    def ack(self, payload):
        """(topic, message): the authenticated acknowledgement of a frame
        handle() stored or already had."""
        d = framedec.decode(bytes(payload))
        dev = d["device"].hex()
        key = self.registry.key(dev, "telemetry")
        msg = frames.ack(d["device"], d["seq"], lambda b: hmac.new(key, b, hashlib.sha256).digest())
        return "vn/%s/ack" % dev, msg

    def rows(self, device=None, kind=None):
        q = "SELECT device, seq, kind, time, ms, wall, received_at, fields FROM frames"
        cond, args = [], []
        if device:
            cond.append("device = ?")
            args.append(device)
        if kind:
            cond.append("kind = ?")
            args.append(kind)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        out = []
        with self.lock:
            found = self.db.execute(q + " ORDER BY device, seq", args).fetchall()
        for r in found:
            row = dict(zip(("device", "seq", "kind", "time", "ms", "wall", "received_at"), r[:7]))
            row.update(json.loads(r[7]))
            out.append(row)
        return out

    def vitals(self, device):
        """The newest vitals row of a device, or None."""
        with self.lock:
            rows = self.db.execute("SELECT fields FROM frames WHERE device = ? AND kind = 'vitals' "
                                   "ORDER BY seq DESC LIMIT 1", (device,)).fetchone()
        return json.loads(rows[0]) if rows else None
