"""Encryption at rest: AES-256-GCM per column value, keys in a key ring
outside the database.

    ring = KeyRing.load(key_file)            # or KeyRing.from_env() / KeyRing.ephemeral()
    blob = ring.seal(b"...", aad=b"frames.fields|240ac4000001|41")
    ring.open(blob, aad=b"frames.fields|240ac4000001|41")
    ring.index("MRN-1234")                   # keyed hash: look up without plaintext

A sealed value is MAGIC | key id (8 ASCII hex) | 12-byte random nonce |
ciphertext+tag. The associated data names the table, column and row, so a
value copied to another row or column does not open. The key id in every
value lets a rotation proceed row by row: old and new keys both open until
the rotation ends and the old key is dropped from the ring.

Key sources, in order (KeyRing.for_store):
  VITALNODE_DATA_KEY        base64 of 32 bytes, or the key file's JSON
                            (a secrets manager's way; read-only: no rotation)
  VITALNODE_DATA_KEY_FILE   a key file
  the store's default       `<database file>.key` beside an SQLite file
The key file is JSON {"current": id, "keys": {id: base64}}, created
owner-only (0600) and refused if group or others may read it, or if it is
owned by another user.

Guarantees: no plaintext of a sealed value reaches the database; a value
sealed under a key the ring lacks, or altered, raises KeyProblem naming the
problem (never returns garbage). Non-guarantee: what is not sealed (device
ids, sequence numbers, times, row counts) stays visible to whoever reads
the files - by design, so the store can index and de-duplicate.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"vnE1"
_KID_LEN = 8
_NONCE = 12
ENV_KEY = "VITALNODE_DATA_KEY"
ENV_KEY_FILE = "VITALNODE_DATA_KEY_FILE"


class KeyProblem(Exception):
    """A key problem: missing, unreadable, too open, or a value that does not open."""


def _new_kid():
    return secrets.token_hex(_KID_LEN // 2)


def _b64(b):
    return base64.b64encode(b).decode()


def _unb64(s, what):
    try:
        k = base64.b64decode(s, validate=True)
    except (ValueError, TypeError):
        raise KeyProblem("%s: a key is not base64" % what)
    if len(k) != 32:
        raise KeyProblem("%s: a key is %d bytes, not 32" % (what, len(k)))
    return k


def check_owner_only(path):
    """Refuse a key file others may read or that another user owns."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise KeyProblem("key file %s is readable by group or others (mode %o): chmod 600 it"
                         % (path, st.st_mode & 0o777))
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyProblem("key file %s belongs to uid %d, not to this user (%d)"
                         % (path, st.st_uid, os.getuid()))


class KeyRing:
    def __init__(self, keys, current, path=None, source="memory"):
        if current not in keys:
            raise KeyProblem("%s: the current key %s is not in the ring" % (source, current))
        self.keys = dict(keys)  # kid -> 32 bytes
        self.current = current
        self.path = Path(path) if path else None
        self.source = source
        self._aead = {k: AESGCM(v) for k, v in self.keys.items()}

    # -- where keys come from
    @classmethod
    def ephemeral(cls):
        kid = _new_kid()
        return cls({kid: AESGCM.generate_key(256)}, kid, source="ephemeral")

    @classmethod
    def _parse(cls, text, where, path=None):
        text = text.strip()
        if text.startswith("{"):
            try:
                d = json.loads(text)
                keys = {kid: _unb64(v, where) for kid, v in d["keys"].items()}
                return cls(keys, d["current"], path, where)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                if isinstance(e, KeyProblem):
                    raise
                raise KeyProblem("%s is not a VitalNode key ring (%s)" % (where, e))
        k = _unb64(text, where)
        kid = hashlib.sha256(k).hexdigest()[:_KID_LEN]
        return cls({kid: k}, kid, path, where)

    @classmethod
    def load(cls, path, create=False):
        """The ring in `path`; with create=True a new owner-only file is made
        if there is none."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise KeyProblem("key file %s does not exist" % path)
            ring = cls.ephemeral()
            ring.path, ring.source = path, str(path)
            ring.save(new=True)
            return ring
        check_owner_only(path)
        return cls._parse(path.read_text(), str(path), path)

    @classmethod
    def for_store(cls, default_path=None, create=False):
        """The ring for a store, from the environment or its key file."""
        env = os.environ.get(ENV_KEY)
        if env:
            return cls._parse(env, "$" + ENV_KEY)
        f = os.environ.get(ENV_KEY_FILE) or default_path
        if not f:
            raise KeyProblem("no data key: set %s (a key file) or %s" % (ENV_KEY_FILE, ENV_KEY))
        return cls.load(f, create=create)

    def save(self, new=False):
        """Write the ring to its file atomically, owner-only."""
        if self.path is None:
            raise KeyProblem("the key comes from %s: rotate it where it is kept" % self.source)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"current": self.current,
                           "keys": {k: _b64(v) for k, v in self.keys.items()}}, indent=1)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new and self.path.exists():
            os.unlink(tmp)
            raise KeyProblem("key file %s appeared meanwhile" % self.path)
        os.replace(tmp, self.path)

    # -- rotation
    def with_new_key(self):
        """A ring holding every key of this one plus a new current key."""
        kid = _new_kid()
        keys = dict(self.keys, **{kid: AESGCM.generate_key(256)})
        return KeyRing(keys, kid, self.path, self.source)

    def only_current(self):
        return KeyRing({self.current: self.keys[self.current]}, self.current, self.path,
                       self.source)

    # -- values
    def seal(self, data, aad):
        if isinstance(data, str):
            data = data.encode()
        nonce = secrets.token_bytes(_NONCE)
        kid = self.current.encode()
        return MAGIC + kid + nonce + self._aead[self.current].encrypt(nonce, bytes(data), aad)

    def open(self, blob, aad):
        blob = bytes(blob)
        if not blob.startswith(MAGIC):
            raise KeyProblem("value is not sealed (plaintext in the store?)")
        kid = blob[len(MAGIC):len(MAGIC) + _KID_LEN].decode("ascii", "replace")
        a = self._aead.get(kid)
        if a is None:
            raise KeyProblem("value sealed with key %s, which the key ring (%s) lacks"
                             % (kid, self.source))
        p = len(MAGIC) + _KID_LEN
        try:
            return a.decrypt(blob[p:p + _NONCE], blob[p + _NONCE:], aad)
        except InvalidTag:
            raise KeyProblem("sealed value does not open: altered, or moved from another row")

    def key_id(self, blob):
        b = bytes(blob)
        return b[len(MAGIC):len(MAGIC) + _KID_LEN].decode("ascii", "replace")

    def seal_json(self, obj, aad):
        return self.seal(json.dumps(obj, separators=(",", ":")), aad)

    def open_json(self, blob, aad):
        return json.loads(self.open(blob, aad))

    def index(self, text, purpose="mrn"):
        """A keyed hash of `text` (hex), stable for one current key: the
        store finds a patient by MRN without keeping the MRN in clear."""
        k = hmac.new(self.keys[self.current], b"vitalnode index " + purpose.encode(),
                     hashlib.sha256).digest()
        return hmac.new(k, text.strip().encode(), hashlib.sha256).hexdigest()
