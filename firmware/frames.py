"""Telemetry frames: a compact, versioned, authenticated binary format that
the node writes and the gateway reads (tools/gateway uses this module).

    hdr = (device_id, seq, time, ms, flags)
    f = frames.vitals(hdr, hr_x10=721, spo2_x10=975, quality=90, state=0,
                      beats=[(12340, 833)])           # (beat ms, RR ms)
    frame = frames.seal(f, tag_fn)                  # + 16-byte tag
    d = framedec.decode(frame)                      # the reader: firmware/framedec.py

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
The reader is firmware/framedec.py (the gateway's; the node never loads it).
Gateway acknowledgement (on vn/<id>/ack, once a frame is stored, or was
already): u32 seq | 16-byte tag, HMAC-SHA256 with the same telemetry
sub-key over ACK_PREFIX | 6 bytes device id | u32 seq (a frame body starts
with the version byte, never with ACK_PREFIX), cut to 128 bits.
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
STATUS_FMT = ">IIBbIHII"


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
    return _frame(STATUS, hdr, struct.pack(STATUS_FMT, uptime_s, max(0, heap_free), reset_cause,
                                           max(-128, min(127, rssi)), lost, min(depth, 0xFFFF),
                                           dropped, version_code))


def security(hdr, event_json):
    return _frame(SECURITY, hdr, event_json.encode())


ACK_PREFIX = b"vn-ack1"
ACK_LEN = const(20)


def ack_body(device_id, seq):
    """What an acknowledgement's tag covers (device_id: the 6 id bytes)."""
    return ACK_PREFIX + device_id + struct.pack(">I", seq)


def ack(device_id, seq, tag_fn):
    """The gateway's acknowledgement of frame `seq`."""
    return struct.pack(">I", seq) + tag_fn(ack_body(device_id, seq))[:TAG_LEN]


def ack_seq(msg, device_id, tag_fn, equal):
    """The sequence number `msg` acknowledges, or -1 if it is not an
    authentic acknowledgement for this device (equal: constant-time)."""
    if len(msg) != ACK_LEN:
        return -1
    seq = struct.unpack(">I", msg[:4])[0]
    if not equal(tag_fn(ack_body(device_id, seq))[:TAG_LEN], msg[4:]):
        return -1
    return seq


def seal(body, tag_fn):
    """body + its tag; tag_fn(bytes) -> HMAC-SHA256 digest (32 bytes)."""
    return body + tag_fn(body)[:TAG_LEN]
