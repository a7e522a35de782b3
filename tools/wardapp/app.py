"""The ward web app: a Starlette app over the gateway's store and the
device registry.

    w = WardApp(store, registry_path, escalate_after=120, notify=Hook(url)).start()
    uvicorn serves w.app (tools/wardapp/server.py: HTTPS with the site CA)

Routes (ROUTES below is the one list; each names its permission from
access.PERMISSIONS, None for public, "any" for any logged-in user):
pages /login /overview /patient/{id} /alerts /patients /devices /admin
/audit /account/password; JSON under /api; live tiles as server-sent
events on /api/events; the FHIR API (bearer tokens) under /fhir.

Admission, devices and discharge (/patients; POST /api/admit, /api/assign,
/api/unassign, /api/discharge, as the gateway's CLI commands of those
names): each goes through the store, which audits it with the user as
actor. The user's ward is checked first (403), then the request (400:
bad date, unknown or inactive device, missing field; 404: unknown MRN or
id), then the state (409: already admitted, overlap, no open assignment,
discharged). The store's refusal comes back in its own words; nothing is
half-done.

Every request: the session cookie is looked up (401 for the API, a
redirect to /login for a page, when there is none); a user still on a
one-time password may only change it and log out; the permission is
checked (403); a POST must carry the session's CSRF token (form field
`csrf` or header X-CSRF-Token) and, when the browser sends an Origin, come
from this origin (403 otherwise). Responses carry a strict
Content-Security-Policy, no-store, and HSTS.

Audit (the store's hash-chained trail): every view of patient data (one
entry per patient shown: overview, live stream, trend, alerts, patient
list), every admission, assignment, unassignment and discharge (by the
store), every acknowledgement, escalation, device and user action, every
login, failed login, throttled login and logout.
"""
import asyncio
import json
import re
import secrets
import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, \
    StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tools.gateway.fhir import version_text
from tools.gateway.store import StoreError, iso, parse_time
from tools.wardapp import pages
from tools.wardapp.access import HOME, allowed
from tools.wardapp.auth import AuthError, Users
from tools.wardapp.live import Feed, connection
from tools.wardapp.trend import chart, trend

COOKIE = "__Host-vn_session"
AT_SLACK_S = 60   # an unassign or discharge time may be this far ahead of the ward's clock
EARLIEST = 946684800  # 2000-01-01: an earlier time is a typing mistake, not a stay
_DEVICE_ID = re.compile(r"^[0-9a-f]{12}$")
SESSION_CHECK_S = 10  # a live stream re-checks its session this often, busy or not
PRE = "__Host-vn_pre"
SPANS = {"6h": 6 * 3600, "24h": 24 * 3600}
STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Denied(Exception):
    def __init__(self, status, text):
        super().__init__(text)
        self.status, self.text = status, text


class _Headers:
    """ASGI middleware: the security headers on every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send2(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                    if k.lower().encode() not in have]
            await send(msg)
        await self.app(scope, receive, send2)


def _patient_label(p):
    return "%s bed %s" % (p["ward"], p["bed"])


def _short_name(p):
    return "%s, %s" % (p["family"].upper(), " ".join(p["given"]))


def _covers(a, now):
    """Does assignment `a` cover the instant `now`?"""
    return a["start_time"] <= now and (a["end_time"] is None or now < a["end_time"])


def _str(data, key):
    """A text field of a request ('' when absent); 400 when it is not text."""
    v = data.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise Denied(400, "%s: give it as text" % key)
    return v


class WardApp:
    def __init__(self, store, registry_path, clock=time.time, escalate_after=120.0, notify=None,
                 idle_s=15 * 60, poll_s=0.1, log=None, hasher=None):
        self.store, self.registry_path, self.clock = store, registry_path, clock
        self.log = log or (lambda s: None)
        self.users = Users(store, clock, idle_s, hasher=hasher)
        self.feed = Feed(store, registry_path, clock, escalate_after, notify, poll_s, self.log)
        self._census = (0.0, {})
        self._reg = (0.0, {})
        self.app = self._build()

    def start(self):
        self.feed.start(self.census)
        return self

    def stop(self):
        """Stop the live feed and end the open event streams (call before
        stopping the server)."""
        self.feed.stop()
        self.feed.close_streams()

    # -- what is where
    def census(self, fresh=False):
        """{device: patient} of the assignments of admitted patients that
        cover this instant (one per device: the store refuses overlaps)."""
        t, c = self._census
        if fresh or time.monotonic() - t > 1.0:
            pats = {p["id"]: p for p in self.store.patients()}
            now = self.clock()
            c = {}
            for a in self.store.assignments():
                if _covers(a, now) and a["patient_id"] in pats:
                    c[a["device"]] = pats[a["patient_id"]]
            self._census = (time.monotonic(), c)
        return c

    def registry(self, fresh=False):
        from tools.provision.registry import Registry
        t, r = self._reg
        if fresh or time.monotonic() - t > 1.0:
            try:
                with Registry(self.registry_path) as reg:
                    r = {d["device_id"]: d for d in reg.devices()}
            except Exception as e:  # noqa: BLE001 - shown as "unknown" rather than no page
                self.log("ward app: registry: %s" % e)
            self._reg = (time.monotonic(), r)
        return r

    def _active_alerts(self, device=None):
        out = {}
        for a in self.feed.alerts(device=device, active=True):
            out.setdefault(a["device"], []).append(a)
        return out

    def tile(self, dev, p, alerts=None):
        s = self.feed.devices.get(dev)
        v = s.vitals if s else None
        reg = self.registry().get(dev)
        regst = reg["status"] if reg else "unknown"
        if alerts is None:
            alerts = self._active_alerts(dev).get(dev, [])
        st = s.status if s else None
        return {
            "device": dev, "patient_id": p["id"], "ward": p["ward"], "bed": p["bed"],
            "label": _patient_label(p), "name": _short_name(p),
            "hr": v["hr_x10"] / 10 if v and v.get("hr_x10") else None,
            "hr_valid": bool(v and v.get("hr_valid")), "hr_q": v.get("hr_q") if v else None,
            "spo2": v["spo2_x10"] / 10 if v and v.get("spo2_x10") else None,
            "spo2_valid": bool(v and v.get("spo2_valid")),
            "spo2_q": v.get("spo2_q") if v else None,
            "lead_off": bool(v and v.get("lead_off")), "finger_off": bool(v and v.get("finger_off")),
            "seq": v["seq"] if v else None, "stored_at": v["received_at"] if v else None,
            "last_seen": s.last_seen if s else None,
            "connection": connection(s.last_seen if s else None, self.clock(), regst == "revoked"),
            "registry": regst,
            "fw": version_text(st["version_code"]) if st and st.get("version_code") else None,
            "ota": s.ota["state"] if s and s.ota else None,
            # the newest status frame's battery (None: no monitor, or a node from before it)
            "battery_pct": st.get("battery_pct") if st else None,
            "battery_mv": st.get("battery_mv") if st else None,
            "alerts": [{k: a[k] for k in ("id", "alert", "words", "severity", "escalated",
                                          "acked_by", "raised_at")} for a in alerts],
        }

    def visible(self, user):
        """{device: patient} the user may see (a clinician's wards)."""
        if user["role"] != "clinician":
            return {}
        return {d: p for d, p in self.census().items() if p["ward"] in user["wards"]}

    def _audit_views(self, user, pids, action, detail):
        with self.store.db.tx() as c:
            for pid in sorted(set(pids)):
                self.store.audit(user["name"], action, pid, detail, c)

    def _patient_for(self, user, pid):
        p = self.store.patient(pid)
        if p is None or p["discharged_at"] is not None:
            raise Denied(404, "no admitted patient %s" % pid)
        if p["ward"] not in user["wards"]:
            raise Denied(403, "patient %s is not on your wards" % pid)
        return p

    # -- pages and API
    def overview_page(self, request, user, data):
        return pages.overview(user, user["csrf"])

    def api_overview(self, request, user, data):
        vis = self.visible(user)
        act = self._active_alerts()
        tiles = sorted((self.tile(d, p, act.get(d, [])) for d, p in vis.items()),
                       key=lambda t: (t["ward"], t["bed"], t["device"]))
        self._audit_views(user, [t["patient_id"] for t in tiles], "view-overview",
                          "tiles: HR, SpO2, quality, alerts")
        return {"tiles": tiles, "server_time": self.clock()}

    def patient_page(self, request, user, data):
        pid = request.path_params["pid"]
        span = request.query_params.get("span", "6h")
        t, p, dev, al = self._trend(user, pid, span)
        self._audit_views(user, [pid], "view-trend", "HR/SpO2 trend %s" % span)
        return pages.patient(user, user["csrf"], p, dev, span, t,
                             {"hr": chart(t, "hr"), "spo2": chart(t, "spo2")}, al)

    def api_trend(self, request, user, data):
        pid = request.path_params["pid"]
        span = request.query_params.get("span", "6h")
        t, p, dev, al = self._trend(user, pid, span)
        self._audit_views(user, [pid], "view-trend", "HR/SpO2 trend %s (API)" % span)
        return t

    def _trend(self, user, pid, span):
        if span not in SPANS:
            raise Denied(400, "span %r: 6h or 24h" % span)
        p = self._patient_for(user, pid)
        end = self.clock()
        rows = self.store.frames(patient_id=pid, kind="vitals", since=end - SPANS[span],
                                 until=end + 1)
        devs = {a["device"] for a in self.store.assignments(pid=pid)}
        al = [a for d in devs for a in self.feed.alerts(device=d, since=end - SPANS[span])]
        opened = [a["device"] for a in self.store.assignments(pid=pid) if a["end_time"] is None]
        t = trend(rows, al, end, SPANS[span])
        # frames of the patient's device(s) the node could not time: not on the timeline
        t["untimed"] = sum(self.store.db.one(
            "SELECT COUNT(*) FROM frames WHERE device = ? AND kind = 'vitals' AND wall = 0 AND "
            "received_at >= ?", (d, end - SPANS[span]))[0] for d in opened)
        return t, p, opened[0] if opened else None, al

    def _alert_rows(self, user):
        vis = self.visible(user)
        rows = []
        for a in self.feed.alerts(since=self.clock() - 86400):
            p = vis.get(a["device"])
            if p is not None:
                rows.append((a, p))
        rows.sort(key=lambda r: (r[0]["cleared_at"] is not None,
                                 {"high": 0, "medium": 1, "technical": 2}[r[0]["severity"]],
                                 -r[0]["raised_at"]))
        self._audit_views(user, [p["id"] for _, p in rows], "view-alerts", "alert list")
        return rows

    def alerts_page(self, request, user, data):
        rows = self._alert_rows(user)
        return pages.alerts(user, user["csrf"], [(a, "%s - %s" % (_patient_label(p),
                                                                  _short_name(p)))
                                                 for a, p in rows])

    def api_alerts(self, request, user, data):
        return {"alerts": [dict(a, patient_id=p["id"], label=_patient_label(p))
                           for a, p in self._alert_rows(user)]}

    def api_ack(self, request, user, data):
        aid = request.path_params["aid"]
        got = self.feed.alerts(alert_id=aid)
        if not got:
            raise Denied(404, "no alert %s" % aid)
        p = self.census(fresh=True).get(got[0]["device"])
        if p is None or p["ward"] not in user["wards"]:
            raise Denied(403, "alert %s is not on your wards" % aid)
        done = self.feed.ack(aid, user["name"], data.get("note"), p["id"])
        return {"message": "acknowledged" if done else "already acknowledged", "id": aid}

    # -- admission, devices, discharge
    def _adt_patient(self, user, ref, admitted=True):
        """The patient `ref` (MRN or id) a change by `user` is about: 400
        none given, 404 unknown, 403 not on the user's wards, 409
        discharged (with `admitted`)."""
        ref = _str({"patient": ref}, "patient").strip()
        if not ref:
            raise Denied(400, "patient is required (MRN or patient id)")
        p = self.store.find_patient(ref)
        if p is None:
            raise Denied(404, "no patient with MRN or id %r" % ref[:70])
        if p["ward"] not in user["wards"]:
            raise Denied(403, "patient %s is not on your wards" % ref[:70])
        if admitted and p["discharged_at"] is not None:
            raise Denied(409, "patient %s (MRN %s) was discharged at %s"
                         % (_short_name(p), p["mrn"], iso(p["discharged_at"])))
        return p

    def _time(self, data, key, ahead=None):
        """Unix seconds from field `key` (ISO date-time, no offset = UTC, or
        Unix seconds), None when empty; 400 when it is not a time, before
        2000, or more than `ahead` s after now."""
        v = data.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        try:
            t = parse_time(str(v), key)
        except (StoreError, OverflowError, ValueError) as e:
            raise Denied(400, str(e) if isinstance(e, StoreError) else
                         "%s %r is not a time" % (key, str(v)[:40]))
        if t < EARLIEST:
            raise Denied(400, "%s %s is before 2000: not a time of this stay" % (key, iso(t)))
        if ahead is not None and t > self.clock() + ahead:
            raise Denied(400, "%s %s is in the future: record it when it happens" % (key, iso(t)))
        return t

    @staticmethod
    def _device_id(v):
        dev = _str({"device": v}, "device").strip().lower()
        if not dev:
            raise Denied(400, "device is required (12 hex digits)")
        if not _DEVICE_ID.match(dev):
            raise Denied(400, "device id %r: 12 hex digits" % dev[:40])
        return dev

    def _active_device(self, v):
        """The device id `v` if the registry has it active: 400 unknown,
        409 pending or revoked, 503 registry unreadable."""
        from tools.provision.registry import Registry, RegistryError
        dev = self._device_id(v)
        try:
            with Registry(self.registry_path) as reg:
                info = reg.device(dev)
        except (RegistryError, sqlite3.Error, OSError) as e:
            raise Denied(503, "the device registry cannot be read: %s" % e)
        if info is None:
            raise Denied(400, "device %s is not in the registry" % dev)
        if info["status"] != "active":
            raise Denied(409, "device %s is %s in the registry: only an active device can be "
                         "assigned" % (dev, info["status"]))
        return dev

    def _changed(self, *devices):
        """After a change: the census now, open overviews told."""
        self.census(fresh=True)
        for d in devices:
            self.feed.publish(d)

    def _patient_rows(self, user):
        """(patient, assignments) of the admitted patients on the user's
        wards, by ward and bed; one audit entry per patient shown."""
        pats = [p for p in self.store.patients() if p["ward"] in user["wards"]]
        by = {}
        for a in self.store.assignments():
            by.setdefault(a["patient_id"], []).append(a)
        self._audit_views(user, [p["id"] for p in pats], "view-patients",
                          "patient list: demographics, devices")
        return [(p, by.get(p["id"], [])) for p in pats]

    def _free_devices(self):
        """Ids of the registry's active devices on no patient now or later."""
        now = self.clock()
        busy = {a["device"] for a in self.store.assignments()
                if a["end_time"] is None or a["end_time"] > now}
        return sorted(d for d, r in self.registry(fresh=True).items()
                      if r["status"] == "active" and d not in busy)

    @staticmethod
    def _patient_json(p, assignments):
        return dict(p, gender=p.get("gender"), label=_patient_label(p), name=_short_name(p),
                    assignments=[dict(a, start=iso(a["start_time"]),
                                      end=iso(a["end_time"]) if a["end_time"] else None)
                                 for a in assignments])

    def patients_page(self, request, user, data):
        return pages.patients(user, user["csrf"], self._patient_rows(user), self._free_devices(),
                              self.clock())

    def api_patients(self, request, user, data):
        return {"patients": [self._patient_json(p, a) for p, a in self._patient_rows(user)],
                "devices": self._free_devices(), "wards": user["wards"]}

    def api_admit(self, request, user, data):
        ward = _str(data, "ward").strip()
        if not ward:
            raise Denied(400, "ward is required")
        if ward not in user["wards"]:
            raise Denied(403, "ward %s is not one of your wards (%s)"
                         % (ward[:40], ", ".join(user["wards"]) or "none"))
        given = data.get("given")
        if given is None or isinstance(given, str):
            given = (given or "").split()
        elif not (isinstance(given, list) and all(isinstance(g, str) for g in given)):
            raise Denied(400, "given: a name, names separated by spaces, or a list of names")
        mrn = _str(data, "mrn")
        before = self.store.find_patient(mrn.strip()) if mrn.strip() else None
        try:
            p = self.store.admit(mrn, _str(data, "family"), given, _str(data, "birth_date"),
                                 ward, _str(data, "bed"), actor=user["name"],
                                 gender=_str(data, "gender").strip() or None)
        except StoreError as e:
            now = self.store.find_patient(mrn.strip()) if mrn.strip() else None
            raise Denied(409 if now is not None and now["discharged_at"] is None else 400, str(e))
        self._changed()
        return {"message": "%s %s (MRN %s) to %s bed %s" % (
            "re-admitted" if before else "admitted", _short_name(p), p["mrn"], p["ward"],
            p["bed"]), "patient": self._patient_json(p, self.store.assignments(pid=p["id"]))}

    def api_assign(self, request, user, data):
        p = self._adt_patient(user, data.get("patient"))
        dev = self._active_device(data.get("device"))
        start = self._time(data, "from")
        end = self._time(data, "to")
        start = int(self.clock()) if start is None else start
        if end is not None and end <= start:
            raise Denied(400, "to %s is not after from %s" % (iso(end), iso(start)))
        try:
            x = self.store.assign(p["id"], dev, user["name"], start, end)
        except StoreError as e:  # everything else was checked: the state is in the way
            raise Denied(409, "%s%s" % (e, self._holder(user, dev, start, end)))
        self._changed(dev)
        return {"message": "device %s on %s (%s) from %s%s" % (
            dev, _short_name(p), _patient_label(p), iso(x["start_time"]),
            " to %s" % iso(end) if end is not None else ""), "assignment": x}

    def _holder(self, user, dev, start, end):
        """Who has `dev` in [start, end), in words the user may read: ward,
        bed and name on the user's wards, else only that it is elsewhere."""
        big = 2 ** 62
        for a in self.store.assignments(device=dev):
            if a["start_time"] < (big if end is None else end) and \
                    start < (big if a["end_time"] is None else a["end_time"]):
                q = self.store.patient(a["patient_id"])
                if q is not None and q["ward"] in user["wards"]:
                    return " (%s, %s)" % (_patient_label(q), _short_name(q))
                return " (a patient not on your wards)"
        return ""

    def api_unassign(self, request, user, data):
        p = self._adt_patient(user, data.get("patient"))
        dev = self._device_id(data.get("device"))
        at = self._time(data, "at", ahead=AT_SLACK_S)
        held = [a for a in self.store.assignments(pid=p["id"], device=dev)
                if a["end_time"] is None]
        if not held:
            raise Denied(409, "device %s is not on %s (no open assignment)"
                         % (dev, _short_name(p)))
        if at is None:  # now; in whole seconds, a stay started this second ends at the next
            at = max(int(self.clock()), held[0]["start_time"] + 1)
        try:
            self.store.unassign(dev, user["name"], at)
        except StoreError as e:  # a time before the start (400), or taken off meanwhile (409)
            still = [a for a in self.store.assignments(pid=p["id"], device=dev)
                     if a["end_time"] is None]
            raise Denied(400 if still else 409, str(e))
        self._changed(dev)
        return {"message": "device %s taken off %s at %s" % (dev, _short_name(p), iso(at))}

    def api_discharge(self, request, user, data):
        p = self._adt_patient(user, data.get("patient"))
        at = self._time(data, "at", ahead=AT_SLACK_S)
        at = int(self.clock()) if at is None else at
        if at < int(p["admitted_at"]):
            raise Denied(400, "at %s is before the admission (%s)" % (iso(at),
                                                                      iso(p["admitted_at"])))
        devs = [a["device"] for a in self.store.assignments(pid=p["id"]) if a["end_time"] is None]
        try:
            self.store.discharge(p["id"], user["name"], at)
        except StoreError as e:  # discharged meanwhile
            raise Denied(409, str(e))
        self._changed(*devs)
        return {"message": "discharged %s (MRN %s) at %s%s" % (
            _short_name(p), p["mrn"], iso(at), "; device %s taken off" % ", ".join(devs)
            if devs else "")}

    def _device_rows(self):
        reg = self.registry()
        refused = self.store.refusal_counts()
        devs = sorted(set(reg) | set(self.feed.devices))
        out = []
        for d in devs:
            r, s = reg.get(d), self.feed.devices.get(d)
            st = s.status if s else None
            status = r["status"] if r else "unknown"
            out.append({"device": d, "status": status, "key_gen": r["key_gen"] if r else None,
                        "reason": r.get("revoke_reason") if r else None,
                        "board": r["board"] if r else None,
                        "fw": version_text(st["version_code"]) if st and st.get("version_code")
                        else None, "ota": s.ota["state"] if s and s.ota else None,
                        "last_seen": s.last_seen if s else None,
                        "connection": connection(s.last_seen if s else None, self.clock(),
                                                 status == "revoked"),
                        "rssi": st.get("rssi") if st else None,
                        "uptime_s": st.get("uptime_s") if st else None,
                        "refused": refused.get(d, {}),
                        "security": s.security if s else []})
        return out

    def devices_page(self, request, user, data):
        return pages.devices(user, user["csrf"], self._device_rows())

    def api_devices(self, request, user, data):
        return {"devices": self._device_rows()}

    def api_device_action(self, request, user, data):
        from tools.provision.registry import Registry, RegistryError
        dev, action = request.path_params["dev"], request.path_params["action"]
        reason = (data.get("reason") or "").strip()[:200]
        if not reason:
            raise Denied(400, "give a reason: it goes in the registry and the audit log")
        try:
            with Registry(self.registry_path) as reg:
                (reg.revoke if action == "revoke" else reg.reinstate)(dev, reason)
        except RegistryError as e:
            raise Denied(409, str(e))
        self.store.audit(user["name"], "device-" + action, None, "device %s: %s" % (dev, reason))
        self.registry(fresh=True)
        self.feed.publish(dev)
        return {"message": "device %s %s" % (dev, "revoked" if action == "revoke"
                                              else "reinstated")}

    def _wards(self):
        named = {r[0] for r in self.store.db.query("SELECT name FROM ward_wards")}
        return sorted(named)

    def admin_page(self, request, user, data):
        return pages.admin(user, user["csrf"], self.users.all(), self._wards())

    def api_users(self, request, user, data):
        return {"users": self.users.all(), "wards": self._wards()}

    @staticmethod
    def _ward_list(v):
        if isinstance(v, list):
            return v
        return [w for w in (v or "").split(",") if w.strip()]

    def api_user_create(self, request, user, data):
        wards = self._ward_list(data.get("wards"))
        unknown = set(w.strip() for w in wards) - set(self._wards())
        if unknown:
            raise Denied(400, "unknown ward(s) %s: add them first" % ", ".join(sorted(unknown)))
        pw = self.users.create((data.get("name") or "").strip(), data.get("role"), wards,
                               actor=user["name"])
        return {"message": "user %s created; one-time password (shown once): %s"
                % (data.get("name"), pw), "password": pw}

    def api_user_update(self, request, user, data):
        name = request.path_params["name"]
        wards = self._ward_list(data.get("wards")) if "wards" in data else None
        unknown = set(w.strip() for w in wards or []) - set(self._wards())
        if unknown:
            raise Denied(400, "unknown ward(s) %s: add them first" % ", ".join(sorted(unknown)))
        dis = data.get("disabled")
        self.users.update(name, user["name"], role=data.get("role"), wards=wards,
                          disabled=None if dis is None else str(dis) in ("1", "true", "True"))
        return {"message": "user %s saved" % name}

    def api_user_reset(self, request, user, data):
        name = request.path_params["name"]
        pw = self.users.reset(name, user["name"])
        return {"message": "new one-time password for %s (shown once): %s" % (name, pw),
                "password": pw}

    def api_ward_add(self, request, user, data):
        from tools.wardapp.auth import _WARD
        name = (data.get("name") or "").strip()
        if not _WARD.match(name):
            raise Denied(400, "ward %r: 1-32 of letters, digits, space . _ -" % name)
        with self.store.db.tx() as c:
            if c.execute("SELECT 1 FROM ward_wards WHERE name = ?", (name,)).fetchone():
                raise Denied(409, "ward %s exists" % name)
            c.execute("INSERT INTO ward_wards VALUES (?, ?)", (name, self.clock()))
            self.store.audit(user["name"], "ward-add", None, "ward %s" % name, c)
        return {"message": "ward %s added" % name}

    def _audit_q(self, request):
        q = request.query_params
        return {k: q[k].strip() for k in ("actor", "subject") if q.get(k, "").strip()}

    def audit_page(self, request, user, data):
        q = self._audit_q(request)
        entries = self.store.audit_log(subject=q.get("subject"), actor=q.get("actor"), limit=300,
                                       newest_first=True)
        problem = self.store.audit_verify()
        head = self.store.audit_head()
        total = self.store.db.one("SELECT COUNT(*) FROM audit")[0]
        self.store.audit(user["name"], "audit-read", None, "filter %s" % (q or "none"))
        return pages.audit(user, user["csrf"], entries, problem,
                           "%d:%s" % head if head else "-", total, q)

    def api_audit(self, request, user, data):
        q = self._audit_q(request)
        entries = self.store.audit_log(subject=q.get("subject"), actor=q.get("actor"),
                                       with_hash=True)
        problem = self.store.audit_verify()
        self.store.audit(user["name"], "audit-read", None, "API, filter %s" % (q or "none"))
        return {"entries": entries, "chain_ok": problem is None, "problem": problem}

    def api_audit_export(self, request, user, data):
        from tools.gateway.auditlog import export
        doc = export(self.store)
        self.store.audit(user["name"], "audit-export", None, "%d entries, head %s"
                         % (len(doc["entries"]), doc["head"]))
        return Response(json.dumps(doc, indent=1), media_type="application/json", headers={
            "Content-Disposition": 'attachment; filename="vitalnode-audit.json"'})

    async def api_events(self, request, user, data):
        loop = asyncio.get_running_loop()
        q = self.feed.subscribe(loop)
        vis = await run_in_threadpool(self.visible, user)
        await run_in_threadpool(self._audit_views, user, [p["id"] for p in vis.values()],
                                "view-live", "live tiles")
        sid = request.cookies.get(COOKIE)

        async def stream():
            nonlocal user
            checked = time.monotonic()
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        dev = await asyncio.wait_for(q.get(), SESSION_CHECK_S)
                    except asyncio.TimeoutError:
                        dev = "keep-alive"
                    if time.monotonic() - checked >= SESSION_CHECK_S:
                        # the session may have timed out, been closed, or its user changed
                        checked = time.monotonic()
                        user = await run_in_threadpool(self.users.session, sid, False)
                        if user is None:
                            yield "event: end\ndata: {}\n\n"
                            return
                    if dev == "keep-alive":
                        yield ": still here\n\n"
                        continue
                    devs = {dev}
                    while not q.empty():
                        devs.add(q.get_nowait())
                    if None in devs:  # the app is stopping
                        yield "event: end\ndata: {}\n\n"
                        return
                    vis2 = await run_in_threadpool(self.visible, user)
                    for d in sorted(devs):
                        p = vis2.get(d)
                        if p is None:
                            if vis.pop(d, None) is not None:  # unassigned or discharged
                                yield "event: gone\ndata: %s\n\n" % json.dumps({"device": d})
                            continue
                        if p["id"] not in {x["id"] for x in vis.values()}:
                            await run_in_threadpool(self._audit_views, user, [p["id"]],
                                                    "view-live", "live tiles")
                        vis[d] = p
                        t = await run_in_threadpool(self.tile, d, p)
                        yield "event: tile\ndata: %s\n\n" % json.dumps(t)
            finally:
                self.feed.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    def home(self, request, user, data):
        return RedirectResponse(HOME[user["role"]], 303)

    # -- login, logout, password
    def _pre(self, error=None, status=200):
        pre = secrets.token_urlsafe(24)
        r = HTMLResponse(pages.login(error, pre), status)
        r.set_cookie(PRE, pre, max_age=1800, path="/", secure=True, httponly=True,
                     samesite="strict")
        return r

    async def login_page(self, request):
        return self._pre()

    async def login_post(self, request):
        try:
            form = await self._body(request)
        except Denied as e:
            return self._pre(e.text, e.status)
        pre = request.cookies.get(PRE)
        if not pre or not secrets.compare_digest(pre, str(form.get("pre", ""))):
            return self._pre("The login form expired: please try again.", 403)
        addr = request.client.host if request.client else "-"
        u, why = await run_in_threadpool(self.users.login, str(form.get("name", "")),
                                         str(form.get("password", "")), addr)
        if u is None:
            return self._pre(why, 429 if why.startswith("too many") else 401)
        sid, _ = await run_in_threadpool(self.users.open_session, u["name"], addr)
        r = RedirectResponse("/account/password" if u["must_change"] else HOME[u["role"]], 303)
        r.set_cookie(COOKIE, sid, path="/", secure=True, httponly=True, samesite="strict")
        r.delete_cookie(PRE, path="/", secure=True, httponly=True, samesite="strict")
        return r

    def logout(self, request, user, data):
        self.users.close_session(request.cookies.get(COOKIE))
        self.store.audit(user["name"], "logout", None, None)
        r = RedirectResponse("/login", 303)
        r.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return r

    def password_page(self, request, user, data):
        return pages.password(user, user["csrf"], forced=user["must_change"])

    def password_post(self, request, user, data):
        if data.get("new") != data.get("again"):
            return HTMLResponse(pages.password(user, user["csrf"], "the new passwords differ",
                                               user["must_change"]), 400)
        try:
            self.users.set_password(user["name"], data.get("old"), data.get("new"))
        except AuthError as e:
            return HTMLResponse(pages.password(user, user["csrf"], str(e), user["must_change"]),
                                400)
        return RedirectResponse(HOME[user["role"]], 303)

    # -- plumbing
    def _wrap(self, fn, perm, api):
        async def endpoint(request):
            user = await run_in_threadpool(self.users.session, request.cookies.get(COOKIE))
            try:
                if user is None:
                    raise Denied(401, "log in first")
                if user["must_change"] and perm != "account":
                    raise Denied(403, "change your one-time password first")
                if perm not in ("any", "account") and not allowed(user["role"], perm):
                    raise Denied(403, "your role (%s) may not use this" % user["role"])
                data = {}
                if request.method == "POST":
                    data = await self._body(request)
                    origin = request.headers.get("origin")
                    if origin and origin.rstrip("/") != str(request.base_url).rstrip("/"):
                        raise Denied(403, "cross-origin request refused")
                    tok = request.headers.get("x-csrf-token") or data.get("csrf") or ""
                    if not secrets.compare_digest(str(tok), user["csrf"]):
                        raise Denied(403, "missing or wrong CSRF token")
                if asyncio.iscoroutinefunction(fn):
                    out = await fn(request, user, data)
                else:
                    out = await run_in_threadpool(fn, request, user, data)
            except Denied as e:
                if e.status == 401 and not api:
                    return RedirectResponse("/login", 303)
                if user is not None and user["must_change"] and not api and e.status == 403:
                    return RedirectResponse("/account/password", 303)
                if api:
                    return JSONResponse({"error": e.text}, e.status)
                return HTMLResponse(pages.denied(user, user["csrf"] if user else "", e.text),
                                    e.status)
            except (AuthError, StoreError) as e:  # a refusal in words, never a traceback
                return JSONResponse({"error": str(e)}, 400) if api else HTMLResponse(
                    pages.denied(user, user["csrf"], str(e)), 400)
            if isinstance(out, Response):
                return out
            if isinstance(out, dict):
                return JSONResponse(out)
            return HTMLResponse(out)
        endpoint.__name__ = getattr(fn, "__name__", "endpoint")
        return endpoint

    @staticmethod
    async def _body(request):
        ct = request.headers.get("content-type", "")
        if int(request.headers.get("content-length") or 0) > 65536:
            raise Denied(413, "request too large")
        if ct.startswith("application/json"):
            try:
                d = json.loads(await request.body() or b"{}")
            except ValueError:
                raise Denied(400, "the body is not JSON")
            if not isinstance(d, dict):
                raise Denied(400, "the body is not a JSON object")
            return d
        if not ct.startswith("application/x-www-form-urlencoded"):
            raise Denied(415, "send a form or JSON")
        body = await request.body()
        if len(body) > 65536:
            raise Denied(413, "request too large")
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                              keep_blank_values=True).items()}

    def routes_table(self):
        """(method, path, permission, handler, api) for every protected route."""
        P, A = False, True
        return [
            ("GET", "/", "any", self.home, P),
            ("GET", "/overview", "overview", self.overview_page, P),
            ("GET", "/patient/{pid}", "patient", self.patient_page, P),
            ("GET", "/alerts", "alerts", self.alerts_page, P),
            ("GET", "/patients", "patients", self.patients_page, P),
            ("GET", "/devices", "devices", self.devices_page, P),
            ("GET", "/admin", "users", self.admin_page, P),
            ("GET", "/audit", "audit", self.audit_page, P),
            ("GET", "/account/password", "account", self.password_page, P),
            ("POST", "/account/password", "account", self.password_post, P),
            ("POST", "/logout", "account", self.logout, P),
            ("GET", "/api/overview", "overview", self.api_overview, A),
            ("GET", "/api/events", "overview", self.api_events, A),
            ("GET", "/api/patient/{pid}/trend", "patient", self.api_trend, A),
            ("GET", "/api/alerts", "alerts", self.api_alerts, A),
            ("POST", "/api/alerts/{aid}/ack", "ack", self.api_ack, A),
            ("GET", "/api/patients", "patients", self.api_patients, A),
            ("POST", "/api/admit", "adt", self.api_admit, A),
            ("POST", "/api/assign", "adt", self.api_assign, A),
            ("POST", "/api/unassign", "adt", self.api_unassign, A),
            ("POST", "/api/discharge", "adt", self.api_discharge, A),
            ("GET", "/api/devices", "devices", self.api_devices, A),
            ("POST", "/api/devices/{dev}/{action:str}", "device-action", self.api_device_action,
             A),
            ("GET", "/api/users", "users", self.api_users, A),
            ("POST", "/api/users", "user-admin", self.api_user_create, A),
            ("POST", "/api/users/{name}", "user-admin", self.api_user_update, A),
            ("POST", "/api/users/{name}/reset", "user-admin", self.api_user_reset, A),
            ("POST", "/api/wards", "user-admin", self.api_ward_add, A),
            ("GET", "/api/audit", "audit", self.api_audit, A),
            ("GET", "/api/audit/export", "audit", self.api_audit_export, A),
        ]

    def _build(self):
        from tools.gateway.api import fhir_routes
        routes = [Route("/login", self.login_page, methods=["GET"]),
                  Route("/login", self.login_post, methods=["POST"])]
        for method, path, perm, fn, api in self.routes_table():
            if path.startswith("/api/devices/"):
                ep = self._wrap(fn, perm, api)

                async def dev_ep(request, ep=ep):
                    if request.path_params["action"] not in ("revoke", "reinstate"):
                        return JSONResponse({"error": "no such action"}, 404)
                    return await ep(request)
                routes.append(Route(path, dev_ep, methods=[method]))
                continue
            routes.append(Route(path, self._wrap(fn, perm, api), methods=[method]))
        routes += fhir_routes(self.store)
        routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
        return _Headers(Starlette(routes=routes))
