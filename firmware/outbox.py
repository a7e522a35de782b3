"""Store-and-forward: every frame is on flash before it is published, and
leaves flash only when the broker acknowledged it.

    box = Outbox()                   # at boot: finds what is still queued
    box.put(VITALS, frame)           # persisted (or OutboxFull for an alert)
    name = box.oldest()              # replay in order: publish box.read(name)
    box.ack(name)                    # PUBACK came: delete it

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
until ack(); after a power cut between publish and ack() the frame is sent
again (the gateway de-duplicates by device and sequence number).
Non-guarantees: the drop counters live in RAM (a reboot restarts them);
when even the reserve is full of alerts, put() of another alert raises
OutboxFull and the caller counts it lost.
"""
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

    @property
    def depth(self):
        return len(self._names)

    def dropped_total(self):
        n = 0
        for v in self.dropped.values():
            n += v
        return n

    def oldest(self):
        return self._names[0] if self._names else None

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
