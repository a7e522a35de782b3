"""Telemetry frames: a compact, versioned, authenticated binary format that
the node writes and the gateway reads (tools/gateway uses this module).

    f = frames.vitals(hdr, hr_x10=721, spo2_x10=975, quality=90, flags=0,
                      beats=[(12340, 833)])           # (beat ms, RR ms)
    frame = frames.seal(f, tag_fn)                  # + 16-byte tag
    d = frames.decode(frame)                        # FrameError if malformed
    frames.verify(frame, key_check)                 # tag check (host side)

Layout, version 1, big-endian; header (23 bytes):
    u8 version | u8 kind | 6 bytes device id | u32 seq | u32 time | u32 ms |
    u8 flags | u16 payload length
  time: Unix seconds when flags bit 0 (T_WALL) is set (RTC set by NTP),
  otherwise the node's boot number; ms: milliseconds since that boot. So
  every frame has an order (boot, ms) even without a clock.
then the payload, then a 16-byte tag: HMAC-SHA256 with the device's
telemetry sub-key over header + payload, cut to 128 bits (RFC 2104 allows
half the hash length; 2**-128 forgery odds).
Payloads by kind:
  VITALS   u16 hr_x10 | u16 spo2_x10 | u8 quality 0-100 | u8 state | u8 n |
           n x (u32 beat ms since boot, u16 RR ms; 0 = unknown)
           hr/spo2 0 = no reading; state bit0 lead off, bit1 finger off
  ALERT    u8 alert (lib/alerts.NAMES index) | u8 raised | u16 hr_x10 |
           u16 spo2_x10 | u32 ms of the change
  STATUS   u32 uptime s | u32 heap free | u8 reset cause | i8 RSSI dBm |
           u32 samples lost | u16 queue depth | u32 frames dropped |
           u32 firmware version code
  SECURITY UTF-8 JSON of one security event (firmware/seclog)
Guarantees: decode() accepts exactly the layout above and raises
FrameError (never another exception) for anything else; a newer version
is refused by name, so a gateway tells "too new" from "garbage".
Non-guarantee: the tag proves origin and integrity, not freshness: the
gateway refuses a replay by (device, seq), which the node never reuses.
"""
import struct

from micropython import const

VERSION = const(1)
VITALS = const(1)
ALERT = const(2)
STATUS = const(3)
SECURITY = const(4)
KINDS = ("", "vitals", "alert", "status", "security")
T_WALL = const(1)
HEAD = ">BB6sIIIBH"
HEAD_LEN = const(23)
TAG_LEN = const(16)
MAX_BEATS = const(32)
MAX_PAYLOAD = const(512)
MAX_FRAME = const(551)  # HEAD_LEN + MAX_PAYLOAD + TAG_LEN
_STATUS = ">IIBbIHII"


class FrameError(ValueError):
    pass


def header(kind, device_id, seq, time, ms, flags, length):
    return struct.pack(HEAD, VERSION, kind, device_id, seq, time, ms, flags, length)


def _frame(kind, hdr, payload):
    dev, seq, time, ms, flags = hdr
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("payload of %d bytes, over %d" % (len(payload), MAX_PAYLOAD))
    return header(kind, dev, seq, time, ms, flags, len(payload)) + payload


def vitals(hdr, hr_x10, spo2_x10, quality, state, beats):
    """hdr = (device id bytes, seq, time, ms, flags); beats: (ms, rr) pairs."""
    beats = beats[-MAX_BEATS:]
    p = bytearray(struct.pack(">HHBBB", max(0, hr_x10), max(0, spo2_x10), quality, state,
                              len(beats)))
    for t, rr in beats:
        p += struct.pack(">IH", t & 0xFFFFFFFF, min(max(rr, 0), 0xFFFF))
    return _frame(VITALS, hdr, bytes(p))


def alert(hdr, which, raised, hr_x10, spo2_x10, at_ms):
    return _frame(ALERT, hdr, struct.pack(">BBHHI", which, 1 if raised else 0, max(0, hr_x10),
                                          max(0, spo2_x10), at_ms & 0xFFFFFFFF))


def status(hdr, uptime_s, heap_free, reset_cause, rssi, lost, depth, dropped, version_code):
    return _frame(STATUS, hdr, struct.pack(_STATUS, uptime_s, max(0, heap_free), reset_cause,
                                           max(-128, min(127, rssi)), lost, min(depth, 0xFFFF),
                                           dropped, version_code))


def security(hdr, event_json):
    return _frame(SECURITY, hdr, event_json.encode())


def seal(body, tag_fn):
    """body + its tag; tag_fn(bytes) -> HMAC-SHA256 digest (32 bytes)."""
    return body + tag_fn(body)[:TAG_LEN]


def split(frame):
    """(body, tag) of a sealed frame, after a length check."""
    if len(frame) < HEAD_LEN + TAG_LEN:
        raise FrameError("frame of %d bytes is shorter than a header and a tag" % len(frame))
    return frame[:-TAG_LEN], frame[-TAG_LEN:]


def peek(frame):
    """(version, kind, device id, seq) without checking the rest."""
    if len(frame) < HEAD_LEN:
        raise FrameError("frame of %d bytes is shorter than a header" % len(frame))
    v, kind, dev, seq = struct.unpack(">BB6sI", frame[:12])
    return v, kind, dev, seq


def decode(frame):
    """The fields of a sealed frame as a dict (tag not checked here)."""
    body, tag = split(frame)
    v, kind, dev, seq, time, ms, flags, n = struct.unpack(HEAD, body[:HEAD_LEN])
    if v != VERSION:
        raise FrameError("frame version %d; this decoder reads version %d" % (v, VERSION))
    p = body[HEAD_LEN:]
    if n != len(p):
        raise FrameError("payload length field %d, but %d bytes follow" % (n, len(p)))
    d = {"version": v, "kind": KINDS[kind] if 0 < kind < len(KINDS) else kind, "device": dev,
         "seq": seq, "time": time, "ms": ms, "wall": bool(flags & T_WALL), "tag": tag}
    if kind == VITALS:
        if n < 7:
            raise FrameError("vitals payload of %d bytes" % n)
        hr, sp, q, st, nb = struct.unpack(">HHBBB", p[:7])
        if nb > MAX_BEATS or n != 7 + 6 * nb:
            raise FrameError("vitals payload: %d beats in %d bytes" % (nb, n))
        if q > 100:
            raise FrameError("quality %d over 100" % q)
        d.update(hr_x10=hr, spo2_x10=sp, quality=q, lead_off=bool(st & 1),
                 finger_off=bool(st & 2),
                 beats=[struct.unpack(">IH", p[7 + 6 * i:13 + 6 * i]) for i in range(nb)])
    elif kind == ALERT:
        if n != 10:
            raise FrameError("alert payload of %d bytes" % n)
        which, up, hr, sp, at = struct.unpack(">BBHHI", p)
        if up > 1:
            raise FrameError("alert raised flag %d" % up)
        d.update(alert=which, raised=bool(up), hr_x10=hr, spo2_x10=sp, at_ms=at)
    elif kind == STATUS:
        if n != struct.calcsize(_STATUS):
            raise FrameError("status payload of %d bytes" % n)
        f = struct.unpack(_STATUS, p)
        d.update(uptime_s=f[0], heap_free=f[1], reset_cause=f[2], rssi=f[3], samples_lost=f[4],
                 queue_depth=f[5], dropped=f[6], version_code=f[7])
    elif kind == SECURITY:
        import json
        try:
            ev = json.loads(p.decode())
        except (ValueError, UnicodeError):
            raise FrameError("security payload is not UTF-8 JSON")
        if not isinstance(ev, dict):
            raise FrameError("security payload is not an object")
        d["event"] = ev
    else:
        raise FrameError("unknown frame kind %d" % kind)
    return d
