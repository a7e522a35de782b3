"""Store-and-forward: every frame is on flash before it is published, and
leaves flash only when the gateway acknowledged it (firmware/uplink.py).

    box = Outbox()                   # at boot: finds what is still queued
    box.put(VITALS, frame)           # persisted (or OutboxFull for an alert)
    name = box.oldest()              # next to publish, in order: box.read(name)
    box.sent(name, ms)               # published; kept until the gateway confirms
    box.acked(seq)                   # the gateway's acknowledgement: delete it
    box.resend()                     # new connection: publish all in flight again
    box.resend(now, wait_ms)         # no answer for wait_ms: publish those again
    box.ack(name)                    # delete now (no end-to-end acknowledgement)

One file per frame in outbox/, named by sequence number and kind
("0000002av"), written as outbox/tmp and renamed into place: a power cut
leaves a whole frame or none (LittleFS rename is atomic), and a stray tmp
is removed at the next start. Names sort in sequence order, so replay
after a reconnect or a reboot is in the order the frames were made.
Bounded: at most MAX_FRAMES frames and MAX_BYTES bytes. When full, the
oldest vitals frame goes first, then the oldest status frame; alerts and
security events are never dropped for room (they may use RESERVE more
frames); each drop is counted in `dropped` by kind and reported.
Guarantees: a frame put() without an exception survives any power loss
until acked() (or ack()); a frame published but not yet acknowledged stays
on flash and is published again after resend() or a reboot (the gateway
de-duplicates by device and sequence number).
Non-guarantees: the drop counters and which frames were published live in
RAM (a reboot restarts them: everything queued is published again);
when even the reserve is full of alerts, put() of another alert raises
OutboxFull and the caller counts it lost.
"""
import time

from micropython import const

from firmware import storage

DIR = "outbox"
MAX_FRAMES = const(240)
RESERVE = const(16)
MAX_BYTES = const(65536)
_DROP_ORDER = ("v", "s")  # what may be dropped for room, first to last
KIND_CHARS = "?vase"  # frames.VITALS=1 .. SECURITY=4


class OutboxFull(OSError):
    pass


class Outbox:
    def __init__(self):
        fs = storage.fs()
        if not storage.exists(DIR):
            fs.mkdir(DIR)
        names = []
        size = 0
        for e in list(fs.ilistdir(DIR)):
            name = e[0]
            if len(name) != 9:  # "tmp" from a cut write, or junk
                fs.remove(DIR + "/" + name)
                continue
            names.append(name)
            size += fs.stat(DIR + "/" + name)[6]
        names.sort()
        self._names = names
        self.bytes = size
        self.dropped = {"v": 0, "s": 0, "a": 0, "e": 0}
        self.max_depth = len(names)
        self._sent = {}  # name -> ticks_ms it was published, awaiting the gateway

    @property
    def depth(self):
        return len(self._names)

    def dropped_total(self):
        n = 0
        for v in self.dropped.values():
            n += v
        return n

    def oldest(self):
        """The oldest frame not published yet on this connection, or None."""
        for name in self._names:
            if name not in self._sent:
                return name
        return None

    def sent(self, name, ms):
        self._sent[name] = ms

    @property
    def in_flight(self):
        return len(self._sent)

    def sent_since(self):
        """ticks_ms of the oldest unacknowledged publish, or None."""
        oldest = None
        for t in self._sent.values():
            if oldest is None or time.ticks_diff(t, oldest) < 0:
                oldest = t
        return oldest

    def resend(self, now=None, wait_ms=0):
        """Publish again: every frame in flight, or (now given) those
        published more than wait_ms before now."""
        if now is None:
            self._sent = {}
            return
        for name in list(self._sent):
            if time.ticks_diff(now, self._sent[name]) > wait_ms:
                del self._sent[name]

    def acked(self, seq):
        """The gateway has frame `seq`: delete it. False if it is not here
        (acknowledged before, or dropped)."""
        prefix = "%08x" % seq
        for name in self._names:
            if name.startswith(prefix):
                self.ack(name)
                return True
        return False

    def read(self, name):
        with storage.fs().open(DIR + "/" + name, "rb") as f:
            return f.read()

    def ack(self, name):
        try:
            self.bytes -= storage.fs().stat(DIR + "/" + name)[6]
            storage.fs().remove(DIR + "/" + name)
        except OSError:
            pass  # already gone (acked before a reboot that lost our RAM)
        if name in self._names:
            self._names.remove(name)
        self._sent.pop(name, None)

    def _drop_one(self):
        for k in _DROP_ORDER:
            for name in self._names:
                if name[8] == k:
                    self.ack(name)
                    self.dropped[k] += 1
                    return True
        return False

    def put(self, kind, seq, frame):
        """Persist `frame` (kind: frames.VITALS..SECURITY); returns its name."""
        k = KIND_CHARS[kind]
        droppable = k in _DROP_ORDER
        cap = MAX_FRAMES if droppable else MAX_FRAMES + RESERVE
        while len(self._names) >= cap or self.bytes + len(frame) > MAX_BYTES:
            if not self._drop_one():
                if droppable:  # only alerts/events queued: the new vitals yields
                    self.dropped[k] += 1
                    return None
                if len(self._names) >= cap:
                    self.dropped[k] += 1
                    raise OutboxFull("outbox full of alerts and events")
                break  # over MAX_BYTES with no vitals left: use the reserve
        name = "%08x%s" % (seq, k)
        fs = storage.fs()
        for attempt in (0, 1):
            try:
                with fs.open(DIR + "/tmp", "wb") as f:
                    f.write(frame)
                fs.rename(DIR + "/tmp", DIR + "/" + name)
                break
            except OSError:  # flash full: make room once, then give up loudly
                try:
                    fs.remove(DIR + "/tmp")
                except OSError:
                    pass
                if attempt or not self._drop_one():
                    self.dropped[k] += 1
                    if droppable:
                        return None
                    raise OutboxFull("flash full: alert not stored")
        self._names.append(name)
        self.bytes += len(frame)
        if len(self._names) > self.max_depth:
            self.max_depth = len(self._names)
        return name
