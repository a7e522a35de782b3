"""The device registry: one SQLite file that the provisioning tool writes
and the gateway reads.

    reg = Registry(path)               # created 0600 if missing
    reg.device("240ac4000001")         # row as a dict, or None
    reg.begin(dev, gen, subkeys, ...)  # key written to the node, not yet proven
    reg.activate(dev)                  # challenge-response passed
    reg.revoke(dev, reason)            # the gateway rejects it from now on
    reg.reinstate(dev, reason)         # a revocation made in error undone (same key)
    reg.key(dev, "telemetry")          # current generation's sub-key

Tables: devices (one row per node: status pending|active|revoked, key
generation, board, lock-down, timestamps), keys (derived sub-keys per
generation and purpose; earlier generations stay so frames queued before
a rotation can still be verified - the gateway decides), events (an
append-only audit log: provisioned, rotated, verified, revoked).
Default path: $VITALNODE_REGISTRY, else $XDG_DATA_HOME/vitalnode/registry.sqlite
(~/.local/share/...): outside the source tree and untouched by `make clean`.

The sub-keys are sealed at rest (AES-256-GCM, tools/gateway/crypto.py),
bound to their device, generation and purpose. The data key comes from
$VITALNODE_DATA_KEY / $VITALNODE_DATA_KEY_FILE, else from the owner-only
file `<registry>.key` made with a new registry. A registry written before
sealing is sealed when it is first opened. `rotate_data_key()` re-seals
under a new key (`python -m tools.gateway rotate-key --registry R`).
"""
import datetime
import os
import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    key_gen INTEGER NOT NULL,
    board TEXT,
    lockdown INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    provisioned_at TEXT,
    rotated_at TEXT,
    revoked_at TEXT,
    revoke_reason TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    gen INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    key_hex TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (device_id, gen, purpose)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    at TEXT NOT NULL,
    what TEXT NOT NULL,
    detail TEXT
);
"""


def default_path():
    env = os.environ.get("VITALNODE_REGISTRY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "vitalnode" / "registry.sqlite"


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class RegistryError(Exception):
    pass


_SEALED = "sealed:"
_KEYCHECK = b"vitalnode registry key check"


def _aad(device_id, gen, purpose):
    return ("registry.keys|%s|%d|%s" % (device_id, gen, purpose)).encode()


class Registry:
    def __init__(self, path=None, ring=None):
        self.path = Path(path) if path else default_path()
        if not self.path.parent.exists():  # a folder made for it is owner-only
            self.path.parent.mkdir(parents=True, mode=0o700)
        if not self.path.exists():  # it holds keys: owner-only from the start
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(str(self.path))
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)
        from tools.gateway.crypto import KeyProblem
        try:
            self.ring = self._open_ring(ring)
        except KeyProblem as e:  # every registry user already reports RegistryError
            self.db.close()
            raise RegistryError(str(e))
        self._seal_plaintext()

    def _open_ring(self, ring):
        from tools.gateway.crypto import KeyProblem, KeyRing
        checked = self.db.execute("SELECT value FROM meta WHERE name = 'keycheck'").fetchone()
        if ring is None:
            default = self.path.with_name(self.path.name + ".key")
            try:
                ring = KeyRing.for_store(default)
            except KeyProblem:
                if checked is not None or default.exists():
                    raise
                ring = KeyRing.for_store(default, create=True)
        if checked is None:
            with self.db:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('keycheck', ?)",
                                (ring.seal(_KEYCHECK, b"registry.keycheck"),))
        else:
            try:
                ring.open(checked[0], b"registry.keycheck")
            except KeyProblem as e:
                raise KeyProblem("the data key (%s) does not open the registry %s: %s"
                                 % (ring.source, self.path, e))
        return ring

    def _seal(self, device_id, gen, purpose, key):
        import base64
        return _SEALED + base64.b64encode(self.ring.seal(key, _aad(device_id, gen, purpose))).decode()

    def _seal_plaintext(self):
        """Seal the sub-keys a registry from before sealing holds in clear."""
        rows = self.db.execute("SELECT device_id, gen, purpose, key_hex FROM keys WHERE key_hex "
                               "NOT LIKE 'sealed:%'").fetchall()
        if rows:
            with self.db:
                for dev, gen, purpose, k in rows:
                    self.db.execute("UPDATE keys SET key_hex = ? WHERE device_id = ? AND gen = ? "
                                    "AND purpose = ?", (self._seal(dev, gen, purpose,
                                                                   bytes.fromhex(k)),
                                                        dev, gen, purpose))

    def rotate_data_key(self, ring):
        """Re-seal every sub-key under ring.current (ring must also hold the
        key in use); one transaction. Returns the number re-sealed."""
        import base64
        rows = self.db.execute("SELECT device_id, gen, purpose, key_hex FROM keys").fetchall()
        with self.db:
            for dev, gen, purpose, k in rows:
                raw = ring.open(base64.b64decode(k[len(_SEALED):]), _aad(dev, gen, purpose))
                self.db.execute("UPDATE keys SET key_hex = ? WHERE device_id = ? AND gen = ? AND "
                                "purpose = ?", (_SEALED + base64.b64encode(
                                    ring.seal(raw, _aad(dev, gen, purpose))).decode(),
                                    dev, gen, purpose))
            self.db.execute("UPDATE meta SET value = ? WHERE name = 'keycheck'",
                            (ring.seal(_KEYCHECK, b"registry.keycheck"),))
        self.ring = ring
        return len(rows)

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def device(self, device_id):
        r = self.db.execute("SELECT * FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        return dict(r) if r else None

    def devices(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM devices ORDER BY device_id")]

    def key(self, device_id, purpose, gen=None):
        """Sub-key bytes of `purpose` (current generation unless `gen`)."""
        if gen is None:
            d = self.device(device_id)
            if d is None:
                raise RegistryError("device %s is not in the registry" % device_id)
            gen = d["key_gen"]
        r = self.db.execute("SELECT key_hex FROM keys WHERE device_id = ? AND gen = ? AND "
                            "purpose = ?", (device_id, gen, purpose)).fetchone()
        if r is None:
            raise RegistryError("no %s key of generation %s for %s" % (purpose, gen, device_id))
        import base64

        from tools.gateway.crypto import KeyProblem
        try:
            return self.ring.open(base64.b64decode(r[0][len(_SEALED):]),
                                  _aad(device_id, gen, purpose))
        except (KeyProblem, ValueError) as e:
            raise RegistryError("%s key of %s does not open: %s" % (purpose, device_id, e))

    def events(self, device_id):
        return [dict(r) for r in self.db.execute(
            "SELECT at, what, detail FROM events WHERE device_id = ? ORDER BY id", (device_id,))]

    def _event(self, device_id, what, detail=None):
        self.db.execute("INSERT INTO events (device_id, at, what, detail) VALUES (?, ?, ?, ?)",
                        (device_id, now(), what, detail))

    def begin(self, device_id, gen, subkeys, board, lockdown):
        """Record the sub-keys of a key about to be written to the node, so
        a host crash after the write never leaves a key nobody knows. The
        device is 'pending' until activate(). Refuses anything but a
        device id (12 lower-case hex digits): a service login name never
        enters the registry."""
        from tools.provision.keys import check_device_id
        try:
            check_device_id(device_id)
        except ValueError as e:
            raise RegistryError("refusing to register %r: %s" % (device_id, e))
        t = now()
        with self.db:
            old = self.device(device_id)
            if old is None:
                self.db.execute("INSERT INTO devices (device_id, status, key_gen, board, lockdown, "
                                "created_at, updated_at) VALUES (?, 'pending', ?, ?, ?, ?, ?)",
                                (device_id, gen, board, int(lockdown), t, t))
            else:
                self.db.execute("UPDATE devices SET status = 'pending', key_gen = ?, board = ?, "
                                "lockdown = ?, updated_at = ? WHERE device_id = ?",
                                (gen, board, int(lockdown), t, device_id))
            self.db.execute("DELETE FROM keys WHERE device_id = ? AND gen = ?", (device_id, gen))
            for purpose, k in subkeys.items():
                self.db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?)",
                                (device_id, gen, purpose, self._seal(device_id, gen, purpose, k), t))
            self._event(device_id, "key-written", "generation %d" % gen)

    def activate(self, device_id):
        t = now()
        with self.db:
            d = self.device(device_id)
            rotated = d["provisioned_at"] is not None
            self.db.execute("UPDATE devices SET status = 'active', provisioned_at = "
                            "COALESCE(provisioned_at, ?), rotated_at = ?, revoked_at = NULL, "
                            "revoke_reason = NULL, updated_at = ? WHERE device_id = ?",
                            (t, t if rotated else None, t, device_id))
            self._event(device_id, "rotated" if rotated else "provisioned",
                        "generation %d, challenge-response passed" % d["key_gen"])

    def note(self, device_id, what, detail=None):
        with self.db:
            self._event(device_id, what, detail)

    def revoke(self, device_id, reason=""):
        d = self.device(device_id)
        if d is None:
            raise RegistryError("device %s is not in the registry" % device_id)
        if d["status"] == "revoked":
            raise RegistryError("device %s is already revoked (%s)" % (device_id, d["revoked_at"]))
        t = now()
        with self.db:
            self.db.execute("UPDATE devices SET status = 'revoked', revoked_at = ?, "
                            "revoke_reason = ?, updated_at = ? WHERE device_id = ?",
                            (t, reason, t, device_id))
            self._event(device_id, "revoked", reason)

    def reinstate(self, device_id, reason=""):
        """Undo a revocation made in error: the device is active again with
        the key generation it had. A node that was out of your hands is
        re-provisioned instead (`make provision REINSTATE=1`: a new key)."""
        d = self.device(device_id)
        if d is None:
            raise RegistryError("device %s is not in the registry" % device_id)
        if d["status"] != "revoked":
            raise RegistryError("device %s is %s, not revoked" % (device_id, d["status"]))
        t = now()
        with self.db:
            self.db.execute("UPDATE devices SET status = 'active', revoked_at = NULL, "
                            "revoke_reason = NULL, updated_at = ? WHERE device_id = ?",
                            (t, device_id))
            self._event(device_id, "reinstated", "key generation %d kept: %s" % (d["key_gen"],
                                                                                 reason))

    def is_active(self, device_id):
        d = self.device(device_id)
        return d is not None and d["status"] == "active"
