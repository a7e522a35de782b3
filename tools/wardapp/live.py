"""What the ward app knows live: each device's newest readings, its alerts,
and who is listening.

    feed = Feed(store, registry_path, escalate_after=120, notify=Hook(url)).start()
    feed.devices["240ac4000001"]     # DeviceState: vitals, status, OTA state, last_seen
    q = feed.subscribe(loop)         # an asyncio.Queue of device ids that changed
    feed.stop()

A thread polls the store every `poll_s` (0.1 s) for frames received since
the last poll, so a frame any gateway worker stores reaches the page well
within 1 s, whichever process stored it. It re-reads a 2 s overlap (a
worker's commit may land after a later one's) and drops what it has seen.

Alerts: an alert frame with raised=1 opens a ward_alerts row (id
"device:seq"), raised=0 clears the device's open row of that alert. An
open alert neither acknowledged nor cleared `escalate_after` seconds after
the ward received it is escalated: marked, audited, and POSTed (JSON,
no patient name) to the notification hook, in its own thread.

Severity follows IEC 60601-1-8's priorities: HIGH (asystole, VF),
MEDIUM (HR, SpO2, AF, battery critical: monitoring is about to stop),
TECHNICAL (lead or finger off, sensor fault, battery low).
"""
import asyncio
import json
import threading
import time
import urllib.request

ALERTS = ("hr_low", "hr_high", "spo2_low", "asystole", "lead_off", "finger_off", "sensor_fault",
          "vf", "af", "battery_low", "battery_critical")  # lib/alerts.NAMES, in the frames' order
# battery_critical: the node stops monitoring within a minute (it deep-sleeps), so it
# ranks above the other technical alarms
SEVERITY = {"asystole": "high", "vf": "high", "hr_low": "medium", "hr_high": "medium",
            "spo2_low": "medium", "af": "medium", "battery_critical": "medium",
            "lead_off": "technical", "finger_off": "technical", "sensor_fault": "technical",
            "battery_low": "technical"}
WORDS = {"hr_low": "Heart rate low", "hr_high": "Heart rate high", "spo2_low": "SpO2 low",
         "asystole": "Asystole", "vf": "Ventricular fibrillation", "af": "Atrial fibrillation",
         "lead_off": "ECG lead off", "finger_off": "Finger off sensor",
         "sensor_fault": "Sensor fault", "battery_low": "Battery low: charge the sensor",
         "battery_critical": "Battery empty: sensor switching off"}
OTA = {"ota-install": "trial", "ota-confirm": "confirmed", "ota-revert": "reverted",
       "ota-revert-image": "reverted", "ota-reject": "rejected"}
LIVE_S = 15    # a frame within this: live; within STALE_S: late; else no data
STALE_S = 60


def alert_name(i):
    return ALERTS[i] if isinstance(i, int) and 0 <= i < len(ALERTS) else "alert-%s" % i


def connection(last_seen, now, revoked=False):
    if revoked:
        return "revoked"
    if last_seen is None:
        return "never seen"
    age = now - last_seen
    return "live" if age <= LIVE_S else "late" if age <= STALE_S else "no data"


class DeviceState:
    __slots__ = ("device", "vitals", "status", "last_seen", "ota", "security", "seq")

    def __init__(self, device):
        self.device = device
        self.vitals = self.status = self.last_seen = self.ota = None
        self.security = []  # newest last, at most 20
        self.seq = 0

    def take(self, row):
        k = row["kind"]
        self.last_seen = max(self.last_seen or 0, row["received_at"])
        if k == "vitals" and (self.vitals is None or row["seq"] > self.vitals["seq"]):
            self.vitals = row
        elif k == "status" and (self.status is None or row["seq"] > self.status["seq"]):
            self.status = row
        elif k == "security":
            ev = row.get("event") or {}
            self.security = (self.security + [dict(ev, received_at=row["received_at"])])[-20:]
            if ev.get("ev") in OTA:
                self.ota = {"state": OTA[ev["ev"]], "at": row["received_at"],
                            "version": ev.get("version") or ev.get("version_code")}
        self.seq = max(self.seq, row["seq"])


class Hook:
    """POST a JSON escalation to `url`; returns the outcome in words."""

    def __init__(self, url, timeout=5):
        self.url, self.timeout = url, timeout

    def __call__(self, payload):
        req = urllib.request.Request(self.url, json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return "sent: HTTP %d" % r.status
        except Exception as e:  # noqa: BLE001 - the outcome is recorded, the ward goes on
            return "failed: %s" % e


class Feed:
    def __init__(self, store, registry_path, clock=time.time, escalate_after=120.0, notify=None,
                 poll_s=0.1, log=None):
        self.store, self.registry_path, self.clock = store, registry_path, clock
        self.escalate_after, self.notify, self.poll_s = escalate_after, notify, poll_s
        self.log = log or (lambda s: None)
        self.devices = {}
        self.lock = threading.RLock()
        self._subs = []  # (loop, queue)
        self._seen = {}  # (device, seq) -> received_at, inside the overlap
        self._cursor = 0.0
        self._stop = threading.Event()
        self._thread = None
        self.stored_events = 0  # device updates pushed (for the figures)

    # -- state
    def _device(self, dev):
        d = self.devices.get(dev)
        if d is None:
            d = self.devices[dev] = DeviceState(dev)
        return d

    def load(self):
        """The newest state from the store (at start)."""
        now = self.clock()
        # what the first poll re-reads (its overlap) and the loading below takes; a frame
        # stored after this snapshot is polled as new
        seen = {(r["device"], r["seq"]): r["received_at"] for r in self.store.received(now - 5.0)}
        for dev, last in self.store.devices_seen().items():
            d = self._device(dev)
            d.last_seen = last
            for kind in ("vitals", "status"):
                for r in self.store.newest(dev, kind):
                    d.take(r)
            for r in reversed(self.store.newest(dev, "security", 20)):
                d.take(r)
        for r in self.store.received(now - 86400, kind="alert", limit=100000):
            self._alert(r)
        self._seen = seen
        self._cursor = now - 2.0
        return self

    def poll(self):
        """Take the frames stored since the last poll; returns the devices
        that changed."""
        with self.lock:
            seen = set(self._seen)
        rows = self.store.received(self._cursor - 2.0, skip=seen)
        changed = set()
        with self.lock:
            for r in rows:
                key = (r["device"], r["seq"])
                if key in self._seen:
                    continue
                self._seen[key] = r["received_at"]
                self._device(r["device"]).take(r)
                if r["kind"] == "alert":
                    self._alert(r)
                changed.add(r["device"])
            if rows:
                self._cursor = max(self._cursor, rows[-1]["received_at"])
                old = self._cursor - 5.0
                self._seen = {k: v for k, v in self._seen.items() if v > old}
        for dev in changed:
            self.publish(dev)
        return changed

    # -- alerts
    def _alert(self, r):
        name = alert_name(r.get("alert"))
        with self.store.db.tx() as c:
            if r.get("raised"):
                if not c.execute("SELECT 1 FROM ward_alerts WHERE device = ? AND alert = ? AND "
                                 "cleared_at IS NULL", (r["device"], name)).fetchone():
                    c.execute("INSERT INTO ward_alerts (id, device, alert, raised_at, "
                              "measured_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                              ("%s:%d" % (r["device"], r["seq"]), r["device"], name,
                               r["received_at"], r["time"] if r["wall"] else None))
            else:
                c.execute("UPDATE ward_alerts SET cleared_at = ? WHERE device = ? AND alert = ? "
                          "AND cleared_at IS NULL AND raised_at <= ?",
                          (r["received_at"], r["device"], name, r["received_at"]))

    _ACOLS = ("id", "device", "alert", "raised_at", "measured_at", "cleared_at", "acked_by", "acked_at", "note",
              "escalated_at", "notified")

    def alerts(self, device=None, active=None, since=None, alert_id=None):
        q, cond, args = "SELECT %s FROM ward_alerts" % ", ".join(self._ACOLS), [], []
        if device:
            cond.append("device = ?")
            args.append(device)
        if active:
            cond.append("cleared_at IS NULL")
        if since is not None:
            cond.append("(raised_at >= ? OR cleared_at IS NULL OR cleared_at >= ?)")
            args += [since, since]
        if alert_id:
            cond.append("id = ?")
            args.append(alert_id)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        out = []
        for r in self.store.db.query(q + " ORDER BY raised_at DESC", args):
            a = dict(zip(self._ACOLS, r))
            if a["note"] is not None:
                a["note"] = self.store.open_note(a["id"], a["note"])
            a["severity"] = SEVERITY.get(a["alert"], "medium")
            a["words"] = WORDS.get(a["alert"], a["alert"])
            a["escalated"] = a["escalated_at"] is not None
            out.append(a)
        return out

    def ack(self, alert_id, user, note, subject=None):
        note = (note or "").strip()[:500] or None
        with self.store.db.tx() as c:
            r = c.execute("SELECT device, acked_at FROM ward_alerts WHERE id = ?",
                          (alert_id,)).fetchone()
            if r is None:
                raise KeyError(alert_id)
            if r[1] is not None:
                return False
            c.execute("UPDATE ward_alerts SET acked_by = ?, acked_at = ?, note = ? WHERE id = ?",
                      (user, self.clock(), None if note is None else self.store.seal_note(
                          alert_id, note), alert_id))
            self.store.audit(user, "alert-ack", subject, "alert %s%s" % (
                alert_id, " with a note" if note else ""), c)
        self.publish(r[0])
        return True

    def escalate_due(self, census=None):
        """Escalate every open, unacknowledged alert older than
        escalate_after; returns their ids."""
        now = self.clock()
        due = [r[0] for r in self.store.db.query(
            "SELECT id FROM ward_alerts WHERE cleared_at IS NULL AND acked_at IS NULL AND "
            "escalated_at IS NULL AND raised_at <= ?", (now - self.escalate_after,))]
        for aid in due:
            a = self.alerts(alert_id=aid)[0]
            p = (census or {}).get(a["device"]) if census is not None else None
            with self.store.db.tx() as c:
                c.execute("UPDATE ward_alerts SET escalated_at = ? WHERE id = ? AND escalated_at "
                          "IS NULL", (now, aid))
                self.store.audit("ward-app", "alert-escalate", p["id"] if p else None,
                                 "alert %s unacknowledged for %d s" % (aid, now - a["raised_at"]),
                                 c)
            payload = {"alert_id": aid, "alert": a["alert"], "words": a["words"],
                       "severity": a["severity"], "device": a["device"],
                       "ward": p["ward"] if p else None, "bed": p["bed"] if p else None,
                       "raised_at": a["raised_at"], "escalated_at": now}
            if self.notify is not None:
                threading.Thread(target=self._send, args=(aid, payload), daemon=True).start()
            self.publish(a["device"])
        return due

    def _send(self, aid, payload):
        res = self.notify(payload)
        with self.store.db.tx() as c:
            c.execute("UPDATE ward_alerts SET notified = ? WHERE id = ?", (res[:200], aid))
        self.log("ward app: escalation of %s %s" % (aid, res))

    # -- listeners
    def subscribe(self, loop):
        q = asyncio.Queue()
        with self.lock:
            self._subs.append((loop, q))
        return q

    def unsubscribe(self, q):
        with self.lock:
            self._subs = [s for s in self._subs if s[1] is not q]

    def close_streams(self):
        """End every live stream (None in its queue): the server can then
        shut down without cancelling them."""
        with self.lock:
            subs, self._subs = list(self._subs), []
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(q.put_nowait, None)
            except RuntimeError:
                pass

    def publish(self, dev):
        with self.lock:
            subs = list(self._subs)
            self.stored_events += 1
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(q.put_nowait, dev)
            except RuntimeError:  # that loop has closed
                self.unsubscribe(q)

    # -- thread
    def start(self, census=None):
        self._census = census
        self.load()
        self._thread = threading.Thread(target=self._run, name="ward-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        next_esc = 0.0
        while not self._stop.is_set():
            try:
                self.poll()
                if time.monotonic() >= next_esc:
                    self.escalate_due(self._census() if self._census else None)
                    next_esc = time.monotonic() + 0.5
            except Exception as e:  # noqa: BLE001 - a store hiccup must not end the live view
                self.log("ward app: live feed: %s" % e)
            self._stop.wait(self.poll_s)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
