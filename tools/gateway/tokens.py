"""Bearer tokens for the FHIR API, issued to users by role, with SMART-style
scopes. The ward app (its users and logins) calls issue(); the API calls
verify().

    tok = Tokens(store)
    t = tok.issue("nurse.kim", "clinician", wards=["W3"], ttl_s=8 * 3600, actor="ward-app")
    t = tok.issue("ehr-link", "integration")                 # an EHR interface: user/*.read
    t = tok.issue("jane", "patient", patient_id=pid)         # patient/*.read, her record only
    g = tok.verify(t)        # Grant(user, role, scopes, wards, patient_id, expires_at) or None
    g.can("Observation")     # has a scope for reading that type
    tok.revoke(t); tok.revoke_user("nurse.kim")

Roles and what they may read (ROLES; a caller may ask for fewer scopes):
  clinician    user/Patient.read user/Observation.read user/Device.read,
               limited to the patients of the wards given at issue
  technician   user/Device.read (no patient data)
  integration  user/*.read (an EHR or interface engine: every patient)
  patient      patient/*.read, limited to one patient (patient_id)
  admin, auditor  no FHIR data (they have the ward app's own pages)
Scopes follow SMART App Launch v1: context/type.read, context patient,
user or system, type a resource type or *.

Tokens are 32 random bytes (base64url, prefix vnt_); the store keeps only
their SHA-256, with user, role, scopes, wards, patient and expiry, so a
stolen database yields no usable token. Issue and revoke are audited.
"""
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field

ROLES = {
    "clinician": ("user/Patient.read", "user/Observation.read", "user/Device.read"),
    "technician": ("user/Device.read",),
    "integration": ("user/*.read",),
    "patient": ("patient/*.read",),
    "admin": (),
    "auditor": (),
}
TYPES = ("Patient", "Observation", "Device")
_SCOPE = re.compile(r"^(patient|user|system)/(\*|Patient|Observation|Device)\.(read|\*)$")


class TokenError(Exception):
    pass


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Grant:
    user: str
    role: str
    scopes: tuple
    wards: tuple = None  # None: every ward
    patient_id: str = None
    expires_at: float = 0.0
    _parsed: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self._parsed = [_SCOPE.match(s).groups() for s in self.scopes if _SCOPE.match(s)]

    def can(self, rtype, context=None):
        """Some scope lets this grant read `rtype` (in `context`:
        'patient' or 'user'; None: any)."""
        return any(t in ("*", rtype) and (context is None or c == context or
                                          (context == "user" and c == "system"))
                   for c, t, _ in self._parsed)


class Tokens:
    def __init__(self, store):
        self.store = store

    def issue(self, user, role, scopes=None, wards=None, patient_id=None, ttl_s=3600,
              actor=None):
        """A new token (string, shown once) for `user` in `role`."""
        if role not in ROLES:
            raise TokenError("role %r: one of %s" % (role, ", ".join(ROLES)))
        if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", user or ""):
            raise TokenError("user name %r: 1-64 of letters, digits and ._@-" % (user,))
        allowed = ROLES[role]
        scopes = tuple(allowed if scopes is None else scopes)
        for s in scopes:
            if not _SCOPE.match(s):
                raise TokenError("scope %r is not context/Type.read" % s)
            if s not in allowed and not self._within(s, allowed):
                raise TokenError("role %s may not have scope %s (it has: %s)"
                                 % (role, s, " ".join(allowed) or "none"))
        if not scopes:
            raise TokenError("role %s reads no FHIR data: no token" % role)
        if role == "patient":
            if not patient_id or self.store.patient(patient_id) is None:
                raise TokenError("a patient token needs the id of a known patient")
        elif patient_id:
            raise TokenError("only a patient token names a patient")
        if role == "clinician" and not wards:
            raise TokenError("a clinician token names the wards whose patients it may read")
        if not (0 < ttl_s <= 7 * 86400):
            raise TokenError("lifetime of %s s: 1 s to 7 days" % ttl_s)
        token = "vnt_" + secrets.token_urlsafe(32)
        now = time.time()
        with self.store.db.tx() as c:
            c.execute("INSERT INTO tokens (hash, user_name, role, scopes, patient_id, wards, "
                      "issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (_hash(token), user, role, " ".join(scopes), patient_id,
                       json.dumps(sorted(wards)) if wards else None, now, now + ttl_s))
            self.store.audit(actor or user, "token-issue", patient_id,
                             "user %s role %s scopes %s ttl %d s" % (user, role, " ".join(scopes),
                                                                     ttl_s), c)
        return token

    @staticmethod
    def _within(scope, allowed):
        c, t, _ = _SCOPE.match(scope).groups()
        return any(_SCOPE.match(a).group(1) == c and _SCOPE.match(a).group(2) == "*"
                   for a in allowed)

    def verify(self, token):
        """The Grant of a live token, or None (unknown, expired, revoked)."""
        if not token or not token.startswith("vnt_") or len(token) > 100:
            return None
        r = self.store.db.one("SELECT user_name, role, scopes, wards, patient_id, expires_at, "
                              "revoked_at FROM tokens WHERE hash = ?", (_hash(token),))
        if r is None or r[6] is not None or r[5] <= time.time():
            return None
        return Grant(r[0], r[1], tuple(r[2].split()), tuple(json.loads(r[3])) if r[3] else None,
                     r[4], r[5])

    def revoke(self, token, actor=None):
        with self.store.db.tx() as c:
            n = c.execute("UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                          (time.time(), _hash(token))).rowcount
            if n:
                self.store.audit(actor or "unknown", "token-revoke", None, "one token", c)
        return n

    def revoke_user(self, user, actor=None):
        with self.store.db.tx() as c:
            n = c.execute("UPDATE tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS "
                          "NULL", (time.time(), user)).rowcount
            self.store.audit(actor or "unknown", "token-revoke", None,
                             "%d token(s) of user %s" % (n, user), c)
        return n
