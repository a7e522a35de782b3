"""Ward users, their passwords, sessions and login throttling.

    users = Users(store, clock=time.time)
    pw = users.create("nurse.kim", "clinician", ["W3"], actor="admin.ann")  # one-time password
    user, why = users.login("nurse.kim", pw, address="10.0.0.7")  # (row, None) | (None, reason)
    sid, csrf = users.open_session("nurse.kim", "10.0.0.7")
    s = users.session(sid)          # dict (user row + csrf) or None: unknown, idle, disabled

Passwords: argon2id (argon2-cffi's RFC 9106 low-memory profile), at least
12 characters. A new user and a reset get a random one-time password that
must be changed at the first login (must_change); nobody has a default
password, and the app has no user until `make ward-user` makes one.

Sessions: 32 random bytes in an HttpOnly, Secure, SameSite=Strict cookie;
the store keeps their SHA-256 only. A session ends after `idle_s` without
a request (default 15 min), after `max_s` in all (12 h), at logout, and
when its user is disabled, changes role or wards, or has their password
reset.

Throttling: a login is refused without checking the password while the
user name has had MAX_USER failures, or the address MAX_ADDRESS, within
WINDOW_S; a success clears the user's count. Every success, failure and
refusal is audited (actor: the name tried).

Guarantees: the same answer ("wrong user name or password") for an
unknown user and a wrong password; verify time does not tell them apart
(a dummy hash is checked for unknown users).
"""
import hashlib
import json
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = ("clinician", "technician", "admin", "auditor")
MIN_PASSWORD = 12
MAX_USER = 5
MAX_ADDRESS = 20
WINDOW_S = 15 * 60
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
_WARD = re.compile(r"^[A-Za-z0-9 ._-]{1,32}$")


class AuthError(Exception):
    """A request about users the app refuses, in words for the user."""


def _h(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


def check_name(name):
    if not _NAME.match(name or ""):
        raise AuthError("user name %r: 2-32 of a-z 0-9 . _ -, starting with a letter" % (name,))
    return name


def check_wards(role, wards):
    wards = sorted({w.strip() for w in (wards or []) if w and w.strip()})
    for w in wards:
        if not _WARD.match(w):
            raise AuthError("ward %r: 1-32 of letters, digits, space . _ -" % w)
    if role == "clinician" and not wards:
        raise AuthError("a clinician needs at least one ward (WARDS=W3,W5)")
    if role != "clinician" and wards:
        raise AuthError("only clinicians have wards")
    return wards


class Users:
    def __init__(self, store, clock=time.time, idle_s=15 * 60, max_s=12 * 3600, hasher=None):
        """hasher: an argon2 PasswordHasher (default: argon2-cffi's RFC 9106
        low-memory argon2id profile)."""
        from tools.wardapp import schema
        schema.migrate(store)
        self.store, self.clock, self.idle_s, self.max_s = store, clock, idle_s, max_s
        self.ph = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
        self._dummy = self.ph.hash(secrets.token_hex(16))

    # -- users
    def get(self, name):
        r = self.store.db.one("SELECT name, role, wards, pw_hash, must_change, created_at, "
                              "created_by, disabled_at FROM ward_users WHERE name = ?", (name,))
        if r is None:
            return None
        return {"name": r[0], "role": r[1], "wards": json.loads(r[2]), "pw_hash": r[3],
                "must_change": bool(r[4]), "created_at": r[5], "created_by": r[6],
                "disabled_at": r[7]}

    def all(self):
        out = [self.get(r[0]) for r in self.store.db.query("SELECT name FROM ward_users ORDER BY name")]
        for u in out:
            u.pop("pw_hash")
        return out

    def create(self, name, role, wards=(), actor="unknown"):
        """A new user; returns their one-time password (shown once)."""
        check_name(name)
        if role not in ROLES:
            raise AuthError("role %r: one of %s" % (role, ", ".join(ROLES)))
        wards = check_wards(role, wards)
        pw = secrets.token_urlsafe(12)
        with self.store.db.tx() as c:
            if c.execute("SELECT 1 FROM ward_users WHERE name = ?", (name,)).fetchone():
                raise AuthError("user %s already exists" % name)
            c.execute("INSERT INTO ward_users VALUES (?, ?, ?, ?, 1, ?, ?, NULL)",
                      (name, role, json.dumps(wards), self.ph.hash(pw), self.clock(), actor))
            self.store.audit(actor, "user-create", None, "user %s role %s wards %s"
                             % (name, role, ",".join(wards) or "-"), c)
        return pw

    def update(self, name, actor, role=None, wards=None, disabled=None):
        u = self.get(name)
        if u is None:
            raise AuthError("no user %s" % name)
        role = role or u["role"]
        if role not in ROLES:
            raise AuthError("role %r: one of %s" % (role, ", ".join(ROLES)))
        wards = check_wards(role, u["wards"] if wards is None and role == u["role"] else
                            (wards or []))
        dis = u["disabled_at"] if disabled is None else (self.clock() if disabled else None)
        if name == actor and (disabled or role != u["role"]):
            raise AuthError("you cannot disable yourself or change your own role")
        with self.store.db.tx() as c:
            c.execute("UPDATE ward_users SET role = ?, wards = ?, disabled_at = ? WHERE name = ?",
                      (role, json.dumps(wards), dis, name))
            if dis is not None or role != u["role"] or wards != u["wards"]:
                c.execute("DELETE FROM ward_sessions WHERE user_name = ?", (name,))
            self.store.audit(actor, "user-update", None, "user %s role %s wards %s%s"
                             % (name, role, ",".join(wards) or "-",
                                " disabled" if dis is not None else ""), c)

    def reset(self, name, actor):
        """A new one-time password for `name`; their sessions end."""
        if self.get(name) is None:
            raise AuthError("no user %s" % name)
        pw = secrets.token_urlsafe(12)
        with self.store.db.tx() as c:
            c.execute("UPDATE ward_users SET pw_hash = ?, must_change = 1 WHERE name = ?",
                      (self.ph.hash(pw), name))
            c.execute("DELETE FROM ward_sessions WHERE user_name = ?", (name,))
            self.store.audit(actor, "user-reset", None, "user %s: one-time password" % name, c)
        return pw

    def set_password(self, name, old, new):
        u = self.get(name)
        if u is None or not self._verify(u["pw_hash"], old):
            raise AuthError("the current password is wrong")
        if len(new or "") < MIN_PASSWORD:
            raise AuthError("the new password needs at least %d characters" % MIN_PASSWORD)
        if new == old:
            raise AuthError("the new password must differ from the current one")
        if new.lower() in name.lower() or name.lower() in new.lower():
            raise AuthError("the new password must not contain the user name")
        with self.store.db.tx() as c:
            c.execute("UPDATE ward_users SET pw_hash = ?, must_change = 0 WHERE name = ?",
                      (self.ph.hash(new), name))
            self.store.audit(name, "password-change", None, None, c)

    def _verify(self, h, pw):
        try:
            return self.ph.verify(h, pw or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- logins
    def _failures(self, user, address):
        since = self.clock() - WINDOW_S
        nu = self.store.db.one("SELECT COUNT(*) FROM ward_logins WHERE user_name = ? AND at > ?",
                               (user, since))[0]
        na = self.store.db.one("SELECT COUNT(*) FROM ward_logins WHERE address = ? AND at > ?",
                               (address, since))[0]
        return nu, na

    def login(self, name, password, address):
        """(user, None) on success, else (None, reason for the user)."""
        name = (name or "").strip().lower()[:64]
        nu, na = self._failures(name, address)
        if nu >= MAX_USER or na >= MAX_ADDRESS:
            self.store.audit(name or "-", "login-throttled", None, "from %s: %d failures for the "
                             "user, %d from the address in %d min" % (address, nu, na,
                                                                      WINDOW_S // 60))
            return None, "too many failed logins: try again in %d minutes" % (WINDOW_S // 60)
        u = self.get(name) if _NAME.match(name) else None
        ok = self._verify(u["pw_hash"] if u else self._dummy, password)
        if not ok or u is None or u["disabled_at"] is not None:
            with self.store.db.tx() as c:
                c.execute("INSERT INTO ward_logins (at, user_name, address) VALUES (?, ?, ?)",
                          (self.clock(), name, address))
                self.store.audit(name or "-", "login-failure", None, "from %s%s" % (
                    address, " (disabled user)" if ok and u else ""), c)
            return None, "wrong user name or password"
        with self.store.db.tx() as c:
            if self.ph.check_needs_rehash(u["pw_hash"]):
                c.execute("UPDATE ward_users SET pw_hash = ? WHERE name = ?",
                          (self.ph.hash(password), name))
            c.execute("DELETE FROM ward_logins WHERE user_name = ?", (name,))
            self.store.audit(name, "login", None, "from %s role %s" % (address, u["role"]), c)
        return u, None

    # -- sessions
    def open_session(self, name, address):
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.store.db.tx() as c:
            c.execute("DELETE FROM ward_sessions WHERE last_seen < ? OR created_at < ?",
                      (now - self.idle_s, now - self.max_s))
            c.execute("INSERT INTO ward_sessions VALUES (?, ?, ?, ?, ?, ?)",
                      (_h(sid), name, csrf, now, now, address))
        return sid, csrf

    def session(self, sid, touch=True):
        """The live session's user row with 'csrf', or None."""
        if not sid or len(sid) > 100:
            return None
        r = self.store.db.one("SELECT user_name, csrf, created_at, last_seen FROM ward_sessions "
                              "WHERE id_hash = ?", (_h(sid),))
        now = self.clock()
        if r is None:
            return None
        if now - r[3] > self.idle_s or now - r[2] > self.max_s:
            self.close_session(sid)
            return None
        u = self.get(r[0])
        if u is None or u["disabled_at"] is not None:
            return None
        if touch and now - r[3] > 1:
            self._exec("UPDATE ward_sessions SET last_seen = ? WHERE id_hash = ?", (now, _h(sid)))
        u.pop("pw_hash")
        u["csrf"] = r[1]
        return u

    def close_session(self, sid):
        self._exec("DELETE FROM ward_sessions WHERE id_hash = ?", (_h(sid),))

    def _exec(self, sql, args):
        with self.store.db.tx() as c:
            c.execute(sql, args)
