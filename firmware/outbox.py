"""Store-and-forward: every frame is on flash before it is published, and
leaves flash only when the gateway acknowledged it (firmware/uplink.py).

    box = Outbox()                   # at boot: finds what is still queued
    box.put(VITALS, frame)           # persisted (or OutboxFull for an alert)
    name = box.oldest()              # next to publish, in order: box.read(name)
    box.sent(name, ms)               # published; kept until the gateway confirms
    box.acked(seq)                   # the gateway's acknowledgement: delete it (its name)
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
RAM does not grow with the queue: the outbox keeps the WINDOW oldest
frames in fixed arrays (sequence, kind, when published) and counts per
kind; the rest is only on flash, and the directory is read again when the
window has room. So at most WINDOW frames are in flight at once.
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
from array import array

from micropython import const

from firmware import storage

DIR = "outbox"
MAX_FRAMES = const(240)
RESERVE = const(16)
MAX_BYTES = const(65536)
WINDOW = const(32)  # oldest frames indexed in RAM (and at most in flight)
_DROP_ORDER = "vs"  # what may be dropped for room, first to last
KIND_CHARS = "?vase"  # frames.VITALS=1 .. SECURITY=4
_NOT_SENT = const(-1)


class OutboxFull(OSError):
    pass


def _name(seq, k):
    return "%08x%s" % (seq, k)


def _seq(name):
    return int(name[:8], 16)


class Outbox:
    def __init__(self):
        fs = storage.fs()
        if not storage.exists(DIR):
            fs.mkdir(DIR)
        self._wseq = array("I", bytes(4 * WINDOW))  # the window, oldest first
        self._wkind = bytearray(WINDOW)  # kind character codes
        self._wsent = array("i", bytes(4 * WINDOW))  # ticks_ms published, or _NOT_SENT
        self._wn = 0
        self._counts = array("H", bytes(2 * len(KIND_CHARS)))  # frames on flash by kind
        self.dropped = {"v": 0, "s": 0, "a": 0, "e": 0}
        self.bytes = 0
        self._top = -1  # the highest sequence number queued
        for e in list(fs.ilistdir(DIR)):
            name = e[0]
            k = name[8:9]
            if len(name) != 9 or k not in KIND_CHARS:  # "tmp" from a cut write, or junk
                fs.remove(DIR + "/" + name)
                continue
            self._counts[KIND_CHARS.find(k)] += 1
            self.bytes += fs.stat(DIR + "/" + name)[6]
            if _seq(name) > self._top:
                self._top = _seq(name)
        self._fill()
        self.max_depth = self.depth

    # -- the window ------------------------------------------------------
    def _fill(self):
        """Top the window up with the oldest frames on flash beyond it."""
        if self._wn >= WINDOW or self._wn >= self.depth:
            return
        after = self._wseq[self._wn - 1] if self._wn else -1
        room = WINDOW - self._wn
        base = self._wn
        for e in storage.fs().ilistdir(DIR):  # keep the `room` smallest above `after`
            name = e[0]
            if len(name) != 9:
                continue
            s = _seq(name)
            if s <= after:
                continue
            n = self._wn - base
            if n == room and s >= self._wseq[self._wn - 1]:
                continue
            i = self._wn if n < room else self._wn - 1
            while i > base and self._wseq[i - 1] > s:
                if i < WINDOW:
                    self._wseq[i] = self._wseq[i - 1]
                    self._wkind[i] = self._wkind[i - 1]
                i -= 1
            self._wseq[i] = s
            self._wkind[i] = ord(name[8])
            if n < room:
                self._wn += 1
        for i in range(base, self._wn):
            self._wsent[i] = _NOT_SENT

    def _find(self, seq):
        for i in range(self._wn):
            if self._wseq[i] == seq:
                return i
        return -1

    def _remove(self, i):
        n = self._wn - 1
        for j in range(i, n):
            self._wseq[j] = self._wseq[j + 1]
            self._wkind[j] = self._wkind[j + 1]
            self._wsent[j] = self._wsent[j + 1]
        self._wn = n

    # -- what the uplink uses ----------------------------------------------
    @property
    def depth(self):
        n = 0
        for c in self._counts:
            n += c
        return n

    def count(self, kind):
        """Frames of `kind` (frames.VITALS..SECURITY) on flash."""
        return self._counts[kind]

    def dropped_total(self):
        n = 0
        for v in self.dropped.values():
            n += v
        return n

    def oldest(self):
        """The oldest frame not published yet on this connection, or None
        (also when WINDOW frames await their acknowledgement)."""
        for i in range(self._wn):
            if self._wsent[i] == _NOT_SENT:
                return _name(self._wseq[i], chr(self._wkind[i]))
        return None

    def sent(self, name, ms):
        i = self._find(_seq(name))
        if i >= 0:
            self._wsent[i] = ms & 0x3FFFFFFF

    @property
    def in_flight(self):
        n = 0
        for i in range(self._wn):
            if self._wsent[i] != _NOT_SENT:
                n += 1
        return n

    def sent_since(self):
        """ticks_ms of the oldest unacknowledged publish, or None."""
        oldest = None
        for i in range(self._wn):
            t = self._wsent[i]
            if t != _NOT_SENT and (oldest is None or time.ticks_diff(t, oldest) < 0):
                oldest = t
        return oldest

    def resend(self, now=None, wait_ms=0):
        """Publish again: every frame in flight, or (now given) those
        published more than wait_ms before now."""
        for i in range(self._wn):
            t = self._wsent[i]
            if t != _NOT_SENT and (now is None or time.ticks_diff(now, t) > wait_ms):
                self._wsent[i] = _NOT_SENT

    def acked(self, seq):
        """The gateway has frame `seq`: delete it; its name, or None if it
        is not here (acknowledged before, or dropped)."""
        i = self._find(seq)
        if i < 0:
            return None
        name = _name(seq, chr(self._wkind[i]))
        self.ack(name)
        return name

    def read(self, name):
        with storage.fs().open(DIR + "/" + name, "rb") as f:
            return f.read()

    def ack(self, name):
        fs = storage.fs()
        try:
            self.bytes -= fs.stat(DIR + "/" + name)[6]
            fs.remove(DIR + "/" + name)
        except OSError:
            return  # already gone (acked before a reboot that lost our RAM)
        k = KIND_CHARS.find(name[8])
        if self._counts[k]:
            self._counts[k] -= 1
        i = self._find(_seq(name))
        if i >= 0:
            self._remove(i)
            self._fill()

    def _drop_one(self):
        for k in _DROP_ORDER:
            if not self._counts[KIND_CHARS.find(k)]:
                continue
            c = ord(k)
            for i in range(self._wn):  # the window holds the oldest frames
                if self._wkind[i] == c:
                    self.ack(_name(self._wseq[i], k))
                    self.dropped[k] += 1
                    return True
            best = None
            for e in storage.fs().ilistdir(DIR):  # beyond it: the oldest on flash
                name = e[0]
                if len(name) == 9 and name[8] == k and (best is None or name < best):
                    best = name
            if best is not None:
                self.ack(best)
                self.dropped[k] += 1
                return True
        return False

    def put(self, kind, seq, frame):
        """Persist `frame` (kind: frames.VITALS..SECURITY); returns its name."""
        k = KIND_CHARS[kind]
        droppable = k in _DROP_ORDER
        cap = MAX_FRAMES if droppable else MAX_FRAMES + RESERVE
        while self.depth >= cap or self.bytes + len(frame) > MAX_BYTES:
            if not self._drop_one():
                if droppable:  # only alerts/events queued: the new vitals yields
                    self.dropped[k] += 1
                    return None
                if self.depth >= cap:
                    self.dropped[k] += 1
                    raise OutboxFull("outbox full of alerts and events")
                break  # over MAX_BYTES with no vitals left: use the reserve
        name = _name(seq, k)
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
        self._counts[kind] += 1
        self.bytes += len(frame)
        if seq > self._top:
            self._top = seq
            if self._wn < WINDOW and self._wn == self.depth - 1:  # everything else is in the window
                self._wseq[self._wn] = seq
                self._wkind[self._wn] = ord(k)
                self._wsent[self._wn] = _NOT_SENT
                self._wn += 1
        else:  # out of order (not from Telemetry): index it afresh
            self._wn = 0
            self._fill()
        d = self.depth
        if d > self.max_depth:
            self.max_depth = d
        return name
