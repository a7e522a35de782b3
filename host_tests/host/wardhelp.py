"""Test helpers for the ward app: a ward in a temporary directory (site CA,
registry with provisioned devices, the gateway's store with patients on two
wards, the app over HTTPS on a free loopback port), signed frames the
gateway judges as it judges a node's, users of every role, a webhook sink."""
import atexit
import hashlib
import hmac
import http.server
import json
import queue
import re
import shutil
import threading
import time

import tempfile
from pathlib import Path

import requests
from argon2 import PasswordHasher

from tools.broker import free_port
from tools.gateway.core import Gateway  # installs the host shims the frames need
from tools.provision import keys
from tools.provision.registry import Registry
from tools.provision.site import dev_site
from tools.wardapp.app import WardApp
from tools.wardapp.live import Hook
from tools.wardapp.server import Server

from firmware import frames  # noqa: E402  (device code, importable after tools.gateway.core)

DEV_A, DEV_B, DEV_C, DEV_X = "240ac4000a01", "240ac4000a02", "240ac4000a03", "240ac4000a09"
PASSWORD = "correct horse battery"
# argon2id as in production, with a small work factor: the tests log in often
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_SITE = []


def site():
    """One development site (CA) for every ward of this test run."""
    if not _SITE:
        d = tempfile.mkdtemp(prefix="vn-ward-site-")
        atexit.register(shutil.rmtree, d, True)
        _SITE.append(dev_site(Path(d) / "site"))
    return _SITE[0]
ALERT = {n: i for i, n in enumerate(("hr_low", "hr_high", "spo2_low", "asystole", "lead_off",
                                     "finger_off", "sensor_fault", "vf", "af", "battery_low",
                                     "battery_critical"))}


def wait(cond, timeout=10, step=0.01):
    """Poll `cond` until it is true (returns its value) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(step)


class Events:
    """Every event of one user's /api/events stream as (event, data),
    read in a thread."""

    def __init__(self, w, s):
        self.r = s.get(w.url + "/api/events", stream=True, timeout=30)
        assert self.r.status_code == 200
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = None
        try:
            for line in self.r.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.q.put((event, json.loads(line[6:])))
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    def next(self, kind, dev, timeout=5, seq=0):
        """The next `kind` event about `dev` (a tile: of seq or newer)."""
        deadline = time.monotonic() + timeout
        while True:
            ev, d = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            if ev == kind and d.get("device") == dev and (d.get("seq") or 0) >= seq:
                return d

    def close(self):
        import socket
        conn = self.r.raw.connection  # unblock the reader: closing alone waits for its read
        if conn is not None and conn.sock is not None:
            conn.sock.shutdown(socket.SHUT_RDWR)
        self.r.close()


class Sink:
    """A local webhook: records every JSON POST."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                got.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class WardRig:
    def __init__(self, tmp, escalate_after=3600.0, notify=True, extra=0):
        """extra: that many more devices, each on a patient of ward W3."""
        self.tmp = tmp
        self.site_dir = site().parent
        self.ca = str(self.site_dir / "ca.pem")
        self.reg_path = tmp / "registry.sqlite"
        self.tkeys, self.seq = {}, {}
        self.extra = ["240ac4000b%02x" % i for i in range(extra)]
        for d in (DEV_A, DEV_B, DEV_C, DEV_X, *self.extra):
            sub = keys.subkeys(keys.new_root(), d)
            with Registry(self.reg_path) as reg:
                reg.begin(d, 1, sub, "esp32", False)
                reg.activate(d)
            self.tkeys[d] = sub["telemetry"]
            self.seq[d] = 0
        self.gw = Gateway(self.reg_path, str(tmp / "gw.sqlite"))
        st = self.store = self.gw.store
        self.pa = st.admit("MRN-1", "Doe", ["Jane"], "1950-02-03", "W3", "12", actor="setup")
        self.pb = st.admit("MRN-2", "Roe", ["Rick"], "1961-07-30", "W3", "14", actor="setup")
        self.pc = st.admit("MRN-3", "Poe", ["Edgar"], "1940-01-19", "W5", "2", actor="setup")
        t0 = int(time.time()) - 7 * 3600
        st.assign(self.pa["id"], DEV_A, "setup", start=t0)
        st.assign(self.pb["id"], DEV_B, "setup", start=t0)
        st.assign(self.pc["id"], DEV_C, "setup", start=t0)
        names = ("Ng", "Ito", "Silva", "Khan", "Moreau", "Berg", "Novak", "Okafor", "Rossi", "Lund")
        for i, d in enumerate(self.extra):
            p = st.admit("MRN-X%d" % i, names[i % len(names)], ["Alex"], "1955-05-05", "W3",
                         str(20 + i), actor="setup")
            st.assign(p["id"], d, "setup", start=t0)
        self.sink = Sink() if notify else None
        self.app = WardApp(st, self.reg_path, escalate_after=escalate_after,
                           notify=Hook(self.sink.url) if self.sink else None, hasher=FAST_HASH)
        with st.db.tx() as c:
            for w in ("W3", "W5"):
                c.execute("INSERT INTO ward_wards VALUES (?, ?)", (w, time.time()))
        self.users = {}
        for name, role, wards in (("nurse.kim", "clinician", ["W3"]),
                                  ("nurse.lee", "clinician", ["W5"]),
                                  ("tech.tom", "technician", []), ("admin.ann", "admin", []),
                                  ("audit.abe", "auditor", [])):
            otp = self.app.users.create(name, role, wards, actor="setup")
            self.app.users.set_password(name, otp, PASSWORD)
            self.users[role if role != "clinician" or "W3" in wards else "clinician-W5"] = name
        self.app.start()
        self.srv = Server(self.app.app, self.site_dir, tmp / "app", host="localhost",
                          port=free_port()).start()
        self.url = self.srv.url.rstrip("/")

    def close(self):
        self.app.stop()
        self.srv.stop()
        if self.sink:
            self.sink.close()
        self.gw.close()

    # -- frames, as the node sends them, through the gateway
    def _send(self, dev, build, t=None):
        self.seq[dev] += 1
        seq = self.seq[dev]
        hdr = (bytes.fromhex(dev), seq, int(t if t is not None else time.time()), seq * 1000,
               frames.T_WALL)
        key = self.tkeys[dev]
        payload = frames.seal(build(hdr), lambda b: hmac.new(key, b, hashlib.sha256).digest())
        out = self.gw.handle("vn/%s/tm" % dev, payload)
        assert out == "stored", out
        return seq

    def vitals(self, dev, hr=72, spo2=97, valid=3, t=None, hr_q=90, spo2_q=88):
        return self._send(dev, lambda h: frames.vitals(h, int(hr * 10), int(spo2 * 10), 90, 0, [],
                                                       valid, 1, hr_q, spo2_q), t)

    def alert(self, dev, name, raised=True, t=None):
        return self._send(dev, lambda h: frames.alert(h, ALERT[name], raised, 1500, 950, 0, 3), t)

    def status(self, dev, version="0.6.0", battery=None):
        """battery: (mV, %) of a node with a battery monitor."""
        from firmware.version import code
        return self._send(dev, lambda h: frames.status(h, 100, 50000, 1, -60, 0, 0, 0,
                                                       code(version), *(battery or ())))

    def security(self, dev, ev, **fields):
        return self._send(dev, lambda h: frames.security(h, json.dumps(dict(fields, ev=ev))))

    def seen(self, dev, seq, timeout=5):
        """Wait until the app's live feed has taken frame `seq` of `dev`."""
        return wait(lambda: dev in self.app.feed.devices and
                    self.app.feed.devices[dev].seq >= seq, timeout)

    # -- users
    def login(self, role, password=PASSWORD):
        """A requests.Session logged in as the user of `role` (TLS verified
        against the site CA), with .csrf set; or the failed response."""
        s = requests.Session()
        s.trust_env = False  # $REQUESTS_CA_BUNDLE would replace the site CA
        s.verify = self.ca
        r = s.get(self.url + "/login", timeout=10)
        pre = re.search(r'name="pre" value="([^"]+)"', r.text).group(1)
        r = s.post(self.url + "/login", data={"name": self.users.get(role, role),
                                              "password": password, "pre": pre},
                   allow_redirects=False, timeout=10)
        s.login_status = r.status_code
        if r.status_code == 303:
            page = s.get(self.url + r.headers["location"], timeout=10)
            m = re.search(r'name="csrf-token" content="([^"]*)"', page.text)
            s.csrf = m.group(1) if m else ""
        return s
