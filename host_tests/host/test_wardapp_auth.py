"""Logging in to the ward app: argon2id hashes, one-time passwords that
must be changed, sessions that end when idle, throttling per user and per
address, cookie flags, and `make ward-user` (the CLI it runs)."""
import re
import subprocess
import sys

import pytest

from tools.gateway.store import Store
from tools.paths import ROOT
from tools.wardapp.auth import MAX_ADDRESS, MAX_USER, WINDOW_S, AuthError, Users

PW = "a long enough secret"


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def users(db_url, tmp_path):
    """On SQLite and on PostgreSQL (the ward app's tables live in the gateway's store)."""
    from tools.gateway.crypto import KeyRing
    st = Store(db_url, key=KeyRing.load(tmp_path / "data.key", create=True))
    clock = Clock()
    from host_tests.host.wardhelp import FAST_HASH
    u = Users(st, clock=clock, idle_s=900, hasher=FAST_HASH)
    yield u, clock, st
    st.close()


def _user(u, name="nurse.kim", role="clinician", wards=("W3",)):
    otp = u.create(name, role, list(wards), actor="admin.ann")
    u.set_password(name, otp, PW)
    return name


def test_passwords_are_argon2id_and_one_time_passwords_must_be_changed(users):
    u, clock, st = users
    otp = u.create("nurse.kim", "clinician", ["W3"], actor="admin.ann")
    row = u.get("nurse.kim")
    assert row["pw_hash"].startswith("$argon2id$") and otp not in row["pw_hash"]
    assert Users(st).ph.time_cost >= 2  # the default profile is RFC 9106's, not the tests' one
    got, why = u.login("nurse.kim", otp, "10.0.0.1")
    assert got["must_change"]
    with pytest.raises(AuthError, match="at least 12"):
        u.set_password("nurse.kim", otp, "short")
    with pytest.raises(AuthError, match="current password is wrong"):
        u.set_password("nurse.kim", "not it", PW)
    u.set_password("nurse.kim", otp, PW)
    assert not u.get("nurse.kim")["must_change"]
    assert u.login("nurse.kim", otp, "10.0.0.1") == (None, "wrong user name or password")


def test_no_user_exists_until_one_is_made_and_mistakes_are_named(users):
    u, clock, st = users
    assert u.all() == []
    assert u.login("admin", "admin", "10.0.0.1")[0] is None
    for args, msg in ((("Nurse Kim", "clinician", ["W3"]), "user name"),
                      (("kim", "doctor", []), "role"),
                      (("kim", "clinician", []), "needs at least one ward"),
                      (("kim", "technician", ["W3"]), "only clinicians")):
        with pytest.raises(AuthError, match=msg):
            u.create(*args, actor="a")


def test_a_session_ends_when_idle_or_when_the_user_is_disabled(users):
    u, clock, st = users
    _user(u)
    sid, csrf = u.open_session("nurse.kim", "10.0.0.1")
    clock.t += 899
    assert u.session(sid)["name"] == "nurse.kim"  # a request keeps it alive
    clock.t += 899
    assert u.session(sid) is not None
    clock.t += 901
    assert u.session(sid) is None  # idle past 15 min
    sid, _ = u.open_session("nurse.kim", "10.0.0.1")
    _user(u, "admin.ann", "admin", [])
    u.update("nurse.kim", "admin.ann", disabled=True)
    assert u.session(sid) is None
    for change in (dict(disabled=True), dict(role="auditor")):
        with pytest.raises(AuthError, match="yourself or change your own role"):
            u.update("admin.ann", "admin.ann", **change)
    assert u.login("nurse.kim", PW, "10.0.0.1")[0] is None


def test_logins_are_throttled_per_user_and_per_address(users):
    u, clock, st = users
    _user(u)
    _user(u, "nurse.lee")
    for i in range(MAX_USER):
        assert u.login("nurse.kim", "guess %d" % i, "10.0.0.%d" % i)[0] is None
    got, why = u.login("nurse.kim", PW, "10.0.0.99")  # the right password, from anywhere
    assert got is None and why.startswith("too many")
    assert u.login("nurse.lee", PW, "10.0.0.1")[0] is not None  # another user is not locked
    clock.t += WINDOW_S + 1
    assert u.login("nurse.kim", PW, "10.0.0.99")[0] is not None
    # one address trying many names
    for i in range(MAX_ADDRESS):
        u.login("user%d" % i, "guess", "192.0.2.7")
    assert u.login("nurse.lee", PW, "192.0.2.7")[1].startswith("too many")
    assert u.login("nurse.lee", PW, "192.0.2.8")[0] is not None
    acts = [e["action"] for e in st.audit_log()]
    assert acts.count("login-failure") == MAX_USER + MAX_ADDRESS
    assert acts.count("login-throttled") == 2 and acts.count("login") == 3


def test_the_session_cookie_and_a_forced_password_change_over_https(tmp_path):
    from host_tests.host.wardhelp import PASSWORD, WardRig
    w = WardRig(tmp_path, notify=False)
    try:
        s = w.login("clinician")
        cookie = [c for c in s.cookies if c.name == "__Host-vn_session"][0]
        assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
        raw = s.get(w.url + "/login", timeout=10)  # any response: check the login's header
        s2 = __import__("requests").Session()
        s2.trust_env, s2.verify = False, w.ca
        pre = re.search(r'name="pre" value="([^"]+)"', s2.get(w.url + "/login").text).group(1)
        r = s2.post(w.url + "/login", data={"name": "nurse.kim", "password": PASSWORD, "pre": pre},
                    allow_redirects=False)
        sc = r.headers["set-cookie"]
        assert "HttpOnly" in sc and "Secure" in sc and "SameSite=strict" in sc.replace(
            "SameSite=Strict", "SameSite=strict")
        assert raw.headers["content-security-policy"].startswith("default-src 'self'")
        # a login form posted without its pre-login token (login CSRF) is refused
        r = s2.post(w.url + "/login", data={"name": "nurse.kim", "password": PASSWORD},
                    allow_redirects=False)
        assert r.status_code == 403
        # a user on a one-time password reaches nothing but the password page
        otp = w.app.users.reset("nurse.kim", "admin.ann")
        s3 = w.login("clinician", password=otp)
        assert s3.login_status == 303
        assert s3.get(w.url + "/api/overview").status_code == 403
        r = s3.get(w.url + "/overview", allow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account/password"
        r = s3.post(w.url + "/account/password", data={"old": otp, "new": PASSWORD + "!",
                                                       "again": PASSWORD + "!",
                                                       "csrf": s3.csrf}, allow_redirects=False)
        assert r.status_code == 303
        assert s3.get(w.url + "/api/overview").status_code == 200
        assert s.get(w.url + "/api/overview").status_code == 401  # the reset ended it
    finally:
        w.close()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tools.wardapp", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_ward_user_prints_a_one_time_password_that_logs_in(tmp_path):
    db = str(tmp_path / "gw.sqlite")
    r = _cli("user", "add", "--name", "nurse.kim", "--role", "clinician", "--ward", "W3,W5",
             "--db", db)
    assert r.returncode == 0, r.stderr
    otp = re.search(r"one-time password: (\S+)", r.stdout).group(1)
    st = Store(db)
    u = Users(st)
    got, _ = u.login("nurse.kim", otp, "127.0.0.1")
    assert got["must_change"] and got["wards"] == ["W3", "W5"] and got["role"] == "clinician"
    st.close()
    for args, msg in ((("user", "add", "--name", "nurse.kim", "--role", "clinician", "--ward",
                        "W3"), "already exists"),
                      (("user", "add", "--name", "x1", "--role", "nurse"), "role"),
                      (("user", "add", "--role", "admin"), "NAME"),
                      (("usr", "add"), "invalid choice")):
        r = _cli(*args, "--db", db)
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1 \
            and "Traceback" not in r.stderr, (args, r.stderr)


def test_make_ward_user_without_name_is_one_line():
    r = subprocess.run(["make", "-s", "ward-user", "ROLE=admin"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("set NAME and ROLE"), r.stderr
