"""The gateway's judgement of one MQTT message, and its store.

    gw = Gateway(registry_path, db)       # db: a path, ':memory:' or a DATABASE_URL
    outcome = gw.handle("vn/240ac4000001/tm", payload)   # "stored", "duplicate", ...
    outcomes = gw.handle_many([(topic, payload), ...])   # one transaction
    gw.counts        # per outcome; gw.vitals(device) for the newest reading

Checks in order (the first that fails names the outcome; nothing is stored):
  limited    the login (the topic's device id) is over its rate
             (tools/gateway/limits.py): counted, not decoded, not stored
  malformed  not a frame of a version this gateway decodes (firmware/framedec.py),
             or values no measurement has (non-finite, out of range)
  topic      the frame's device id is not the topic's: a node publishing for
             another (the broker's ACL already refuses it; this is the second wall)
  unknown    device not in the registry
  revoked    device revoked (registry) - refused even with a valid tag
  forged     the HMAC tag does not verify with the device's telemetry sub-key
  stale      authentic, but far behind the device's newest stored seq (more
             than a node's outbox holds: limits.SeqWindow)
  duplicate  (device, seq) already stored: a QoS 1 redelivery, a node's resend
             after a reboot, a replay, or a copy another gateway worker
             stored; the stored copy stands
  erased     the frame falls in the period of a patient erased since
then "stored". A frame whose node wall time is more than TIME_SKEW_S
ahead of arrival or TIME_AGE_S behind it is stored without wall time
(wall false: it is attributed to no patient's period by that time) and
counted in `skewed`, logged as "clock". Every refusal is counted; the refusal log (and the live
log) gets the first of each (login, outcome) per minute and then one row
summing the rest (limits.RefusalLog), so a flood cannot grow it.
For "stored", "duplicate" and "erased" (the gateway has settled the frame),
ack() makes the acknowledgement the node waits for before it deletes the
frame (firmware/frames.ack, published on vn/<id>/ack by tools/gateway/mqtt.py);
it carries the gateway's clock, which sets the node's (firmware/clock.py):
keep the gateway's host on NTP.
Guarantees: one row per (device, seq), ever, whatever the number of
workers (the store's primary key, tools/gateway/store.py); handle() never
raises for any payload (the fuzz test feeds it 10,000); fields and raw
bytes are sealed at rest.
Non-guarantee: frames signed with an earlier key generation are refused
as forged after a rotation (the node re-signs nothing; its queue drains
before rotation in practice).
"""
import hashlib
import hmac
import os
import threading
import time

from tools import devicecode

devicecode.install()
from firmware import framedec, frames  # noqa: E402  (device code, on CPython)
from tools.provision.registry import Registry, RegistryError  # noqa: E402

OUTCOMES = ("stored", "duplicate", "erased", "limited", "malformed", "topic", "unknown", "revoked",
            "forged", "stale")
SETTLED = ("stored", "duplicate", "erased")  # the gateway has it (or refuses it for good): ack
FRAME_MAX = frames.HEAD_LEN + frames.MAX_PAYLOAD + frames.TAG_LEN
TIME_SKEW_S = 300  # a node's wall time may be this far ahead of arrival
TIME_AGE_S = 7 * 86400  # and this far behind (queued on a node that was off)


def default_db():
    """DATABASE_URL, else build/gateway.sqlite."""
    from tools.paths import BUILD
    return os.environ.get("DATABASE_URL") or str(BUILD / "gateway.sqlite")


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if k in ("device", "tag"):
            continue
        out[k] = [list(b) for b in v] if k == "beats" else v
    return out


class Gateway:
    def __init__(self, registry_path, db=None, log=None, store=None, key=None, limiter=None,
                 refusal_log=None, seq_window=None, clock=time.time):
        """db: an SQLite path, ':memory:' or a DATABASE_URL (default:
        DATABASE_URL, else build/gateway.sqlite); or pass an open `store`.
        limiter, refusal_log, seq_window: tools/gateway/limits.py objects
        (defaults: its documented limits on the real clocks); clock: arrival
        time in Unix s (a simulated world passes its own)."""
        from tools.gateway import limits
        from tools.gateway.store import Store
        self.limiter = limiter or limits.RateLimiter()
        self.refusal_log = refusal_log or limits.RefusalLog()
        self.window = seq_window or limits.SeqWindow()
        self._registry_path = registry_path
        self._local = threading.local()  # sqlite: one registry connection per thread
        self.lock = threading.RLock()  # counts
        self.log = log or (lambda s: None)
        self.store = store or Store(db if db is not None else default_db(), key=key, log=self.log)
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.skewed = 0  # stored frames whose node time was not taken (TIME_SKEW_S, TIME_AGE_S)
        self.clock = clock  # arrival time (Unix s)
        self._acks = {}  # device -> telemetry key of its last verified frame (for ack())

    @property
    def registry(self):
        r = getattr(self._local, "registry", None)
        if r is None:
            r = self._local.registry = Registry(self._registry_path)
        return r

    def close(self):
        self.store.close()

    def _count(self, outcome, device, seq, detail, refusals, login=None):
        with self.lock:
            self.counts[outcome] += 1
        if outcome == "stored":
            self.window.stored(device, seq)
            return outcome
        rows = self.refusal_log.add(outcome, login or device, seq, detail)
        refusals.extend(rows)
        if rows and outcome != "duplicate":  # the first of its kind this window
            self.log("gateway: refused %s frame %s/%s: %s" % (outcome, device or login, seq,
                                                               detail))
        return outcome

    @staticmethod
    def _login(topic):
        """The device id a topic vn/<id>/tm names (the login the broker's ACL
        let publish there), or None."""
        if isinstance(topic, str):
            parts = topic.split("/")
            if len(parts) == 3 and parts[0] == "vn" and parts[2] == "tm":
                return parts[1][:32]
        return None

    def handle(self, topic, payload):
        return self.handle_many([(topic, payload)])[0]

    def handle_many(self, messages):
        """Judge and store a batch of (topic, payload): the verified frames
        go in one transaction. One outcome per message; never raises."""
        out = [None] * len(messages)
        refusals, good = [], []
        for i, (topic, payload) in enumerate(messages):
            login = self._login(topic)
            if not self.limiter.allow(login):
                out[i] = self._count("limited", None, None, "over %g frames/s (burst %d)"
                                     % (self.limiter.rate, self.limiter.burst), refusals, login)
                continue
            try:
                r = self._judge(topic, bytes(payload))
            except Exception as e:  # noqa: BLE001 - a message must never stop the gateway
                r = ("malformed", None, None, "unexpected: %r" % (e,))
            if isinstance(r, dict):
                good.append((i, r))
            else:
                out[i] = self._count(*r, refusals, login=login)
        if good:
            try:
                got = self.store.insert_frames([r for _, r in good])
            except Exception as e:  # noqa: BLE001 - the store is down: nothing acked, the node resends
                self.log("gateway: store failed, %d frame(s) not stored: %s" % (len(good), e))
                for i, _ in good:
                    out[i] = "unavailable"
                got = None
            if got is not None:
                for (i, r), o in zip(good, got):
                    if o == "stored" and r.get("skew"):
                        with self.lock:
                            self.skewed += 1
                        rows = self.refusal_log.add("clock", r["device"], r["seq"], r["skew"])
                        refusals.extend(rows)
                        if rows:
                            self.log("gateway: %s/%s: %s" % (r["device"], r["seq"], r["skew"]))
                    out[i] = self._count(o, r["device"], r["seq"],
                                         "already stored" if o == "duplicate" else
                                         "in an erased patient's period" if o == "erased" else "",
                                         refusals)
        refusals.extend(self.refusal_log.flush())
        try:
            self.store.refuse(refusals)
        except Exception as e:  # noqa: BLE001 - the log of refusals is best effort
            self.log("gateway: could not log %d refusal(s): %s" % (len(refusals), e))
        return out

    def _judge(self, topic, payload):
        """The decoded frame as a row for the store, or a refusal tuple."""
        if len(payload) > FRAME_MAX:  # the broker refuses these too (tools/broker.MAX_PACKET)
            return ("malformed", None, None, "%d bytes, over the largest frame (%d)"
                    % (len(payload), FRAME_MAX))
        try:
            d = framedec.decode(payload)
        except (frames.FrameError, ValueError, KeyError, IndexError) as e:
            return ("malformed", None, None, str(e)[:200])
        dev = d["device"].hex()
        seq = d["seq"]
        parts = topic.split("/") if isinstance(topic, str) else []
        if len(parts) != 3 or parts[0] != "vn" or parts[2] != "tm" or parts[1] != dev:
            return ("topic", dev, seq, "frame of %s on topic %r" % (dev, topic))
        info = self.registry.device(dev)
        if info is None:
            return ("unknown", dev, seq, "not in the registry")
        if info["status"] != "active":
            return ("revoked", dev, seq, "device is %s" % info["status"])
        try:
            key = self.registry.key(dev, "telemetry")
        except RegistryError as e:
            return ("unknown", dev, seq, str(e))
        body, tag = framedec.split(payload)
        want = hmac.new(key, body, hashlib.sha256).digest()[:frames.TAG_LEN]
        if not hmac.compare_digest(want, tag):
            return ("forged", dev, seq, "tag does not verify")
        if self.window.stale(dev, seq, self.store.max_seq):
            return ("stale", dev, seq, "seq %d is more than %d behind the newest stored"
                    % (seq, self.window.width))
        self._acks[dev] = key
        now = self.clock()
        skew = None
        if d["wall"] and not now - TIME_AGE_S <= d["time"] <= now + TIME_SKEW_S:
            # a node clock far ahead (or far behind) of arrival: its time would put the
            # frame in another period (another patient's assignment); stored as untimed
            skew = "node time %d is %+d s from arrival: stored without wall time" % (
                d["time"], d["time"] - now)
            d["wall"] = False
        row = {"device": dev, "seq": seq, "kind": d["kind"], "time": d["time"], "ms": d["ms"],
               "wall": d["wall"], "received_at": now, "fields": _jsonable(d), "raw": payload}
        if skew:
            row["skew"] = skew
        return row

    def latest(self, device):
        """(kind, fields) of a device's newest frame, or None."""
        return self.store.latest(device)

    def raw(self, device, limit):
        """The first `limit` stored frames of a device, as received."""
        return self.store.raw(device, limit)

    def ack(self, payload):
        """(topic, message): the authenticated acknowledgement of a frame
        handle() settled (stored, already had, or erased)."""
        d = framedec.decode(bytes(payload))
        dev = d["device"].hex()
        key = self._acks.get(dev) or self.registry.key(dev, "telemetry")
        msg = framedec.ack(d["device"], d["seq"], lambda b: hmac.new(key, b, hashlib.sha256).digest(),
                         int(self.clock()) if d["acks_timed"] else -1)  # the node's wall time
        return "vn/%s/ack" % dev, msg

    def rows(self, device=None, kind=None):
        """Stored frames (decrypted), ordered by device and seq: the columns,
        the decoded fields, and patient_id (None: device-only)."""
        return self.store.frames(device=device, kind=kind)

    def vitals(self, device):
        """The newest vitals fields of a device, or None."""
        got = self.store.latest(device, "vitals")
        return got[1] if got else None
