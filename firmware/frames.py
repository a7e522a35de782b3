"""Telemetry frames: a compact, versioned, authenticated binary format that
the node writes and the gateway reads (tools/gateway uses this module).

    hdr = (device_id, seq, time, ms, flags)
    f = frames.vitals(hdr, hr_x10=721, spo2_x10=975, quality=90, state=0,
                      beats=[(12340, 833, 0)],        # (beat ms, RR ms, flags)
                      valid=3, hr_src=1, hr_q=100, spo2_q=100)
    frame = frames.seal(f, tag_fn)                  # + 16-byte tag
    d = framedec.decode(frame)                      # the reader: firmware/framedec.py

Layout, version 2 (the reader also takes version 1), big-endian; header
(23 bytes):
    u8 version | u8 kind | 6 bytes device id | u32 seq | u32 time | u32 ms |
    u8 flags | u16 payload length
  time: Unix seconds when flags bit 0 (T_WALL) is set (the RTC set from the
  gateway's authenticated acknowledgements: firmware/clock.py),
  otherwise the node's boot number; ms: milliseconds since that boot. So
  every frame has an order (boot, ms) even without a clock. flags bit 1
  (ACK_TIMED): the node reads version 2 acknowledgements (below); the
  gateway sends version 1 to a node that does not set it.
then the payload, then a 16-byte tag: HMAC-SHA256 with the device's
telemetry sub-key over header + payload, cut to 128 bits (RFC 2104 allows
half the hash length; 2**-128 forgery odds).
Payloads by kind:
  VITALS   u16 hr_x10 | u16 spo2_x10 | u8 quality 0-100 | u8 state |
           u8 valid | u8 hr_src | u8 hr_q 0-100 | u8 spo2_q 0-100 | u8 n |
           n x (u32 beat ms since boot, u16 RR ms (0 = unknown), u8 flags)
    hr_x10 / spo2_x10  0.1 /min, 0.1 %; 0 = no value at all
    quality   the PPG signal quality index (pulse SQI, as in version 1)
    state     bit0 ECG leads off, bit1 finger off, bit2 VF/VFL judged,
              bit3 AF judged, bit4 asystole alert up (bits 2-4: Detect's
              rhythm_state shifted left by 2)
    valid     bit0: the node vouches for hr_x10 (hr_valid); bit1: for
              spo2_x10 (spo2_valid). A value without its bit (motion, poor contact,
              noise, low perfusion, VF) must not be shown or exported as a
              valid observation. firmware/detect.py states the rules.
    hr_src    0 none, 1 ECG (median of clean RRs), 2 PPG (pulse rate)
    hr_q      ECG: % of the last 8 beats that were clean (no ectopic or
              noisy flag); PPG: the pulse SQI. 0-100.
    spo2_q    % of the last 5 pulses that passed the SpO2 gates. 0-100.
    beat flags  bit0 QRS unlike the patient's usual (ventricular-looking),
              bit1 premature, bit2 noisy (poor signal around it), bit3 the
              beat is a PPG pulse (no ECG). For HRV use the RRs between
              beats without bits 0-2.
  ALERT    u8 alert (lib/alerts.NAMES index) | u8 raised | u16 hr_x10 |
           u16 spo2_x10 | u32 ms of the change | u8 valid (as VITALS)
    the ms: the detector's sample clock; for battery_low / battery_critical
    the header's (ms since boot)
  STATUS   u32 uptime s | u32 heap free | u8 reset cause | i8 RSSI dBm |
           u32 samples lost | u16 queue depth | u32 frames dropped |
           u32 firmware version code | u16 battery mV | u8 battery %
    battery   the cell's voltage and charge (lib/battery.py); % 255 and
              mV 0: the node has no battery monitor. Older nodes send the
              status without the last two fields (24 bytes); the reader
              reports their battery as None.
  SECURITY UTF-8 JSON of one security event (firmware/seclog)
Version 1 (older nodes) is the same without valid/hr_src/hr_q/spo2_q in
VITALS, without the beat flags and without valid in ALERT; the reader
reports its values with hr_valid / spo2_valid False (version 1 nodes made
no validity judgement). The reader is firmware/framedec.py (the gateway's;
the node never loads it).
Gateway acknowledgement (on vn/<id>/ack, once a frame is stored, or was
already), version 2: u32 seq | u32 gateway time (Unix s) | 16-byte tag,
HMAC-SHA256 with the same telemetry sub-key over ACK2_PREFIX | 6 bytes
device id | u32 seq | u32 time, cut to 128 bits; the gateway builds it
(framedec.ack). A frame body starts with the version byte, never with an
ACK prefix. Version 1 (older gateways):
u32 seq | tag over ACK_PREFIX | device id | u32 seq. The node reads both;
the time is its only source of wall time (firmware/clock.sync).
Non-guarantee: the tag proves origin and integrity, not freshness: the
gateway refuses a replay by (device, seq), which the node never reuses,
and the node takes time only from the acknowledgement of a frame it
published once, moments ago (firmware/uplink.py).
"""
import struct

from micropython import const

VERSION = const(2)
VITALS_HEAD = ">HHBBBBBBB"
BEAT_FMT = ">IHB"
ALERT_FMT = ">BBHHIB"
VITALS = const(1)
ALERT = const(2)
STATUS = const(3)
SECURITY = const(4)
KINDS = ("", "vitals", "alert", "status", "security")
T_WALL = const(1)
ACK_TIMED = const(2)  # header flag: this node reads timed (version 2) acknowledgements
HEAD = ">BB6sIIIBH"
HEAD_LEN = const(23)
TAG_LEN = const(16)
MAX_BEATS = const(32)
MAX_PAYLOAD = const(512)
STATUS_FMT = ">IIBbIHIIHB"
NO_BATTERY = const(255)  # STATUS battery % of a node without a battery monitor


class FrameError(ValueError):
    pass


def header(kind, device_id, seq, time, ms, flags, length):
    return struct.pack(HEAD, VERSION, kind, device_id, seq, time, ms, flags, length)


def _frame(kind, hdr, payload):
    dev, seq, time, ms, flags = hdr
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("payload of %d bytes, over %d" % (len(payload), MAX_PAYLOAD))
    return header(kind, dev, seq, time, ms, flags, len(payload)) + payload


def _q(v):
    return min(100, max(0, v))


def vitals(hdr, hr_x10, spo2_x10, quality, state, beats, valid=0, hr_src=0, hr_q=0, spo2_q=0):
    """hdr = (device id bytes, seq, time, ms, flags); beats: (ms, rr, flags)
    or (ms, rr) (flags 0)."""
    beats = beats[-MAX_BEATS:]
    p = bytearray(struct.pack(VITALS_HEAD, max(0, hr_x10), max(0, spo2_x10), _q(quality), state,
                              valid & 3, hr_src, _q(hr_q), _q(spo2_q), len(beats)))
    for b in beats:  # (ms, rr) pairs are taken too: flags 0
        p += struct.pack(BEAT_FMT, b[0] & 0xFFFFFFFF, min(max(b[1], 0), 0xFFFF),
                         b[2] & 0xFF if len(b) > 2 else 0)
    return _frame(VITALS, hdr, bytes(p))


def alert(hdr, which, raised, hr_x10, spo2_x10, at_ms, valid=0):
    return _frame(ALERT, hdr, struct.pack(ALERT_FMT, which, 1 if raised else 0, max(0, hr_x10),
                                          max(0, spo2_x10), at_ms & 0xFFFFFFFF, valid & 3))


def status(hdr, uptime_s, heap_free, reset_cause, rssi, lost, depth, dropped, version_code,
           mv=0, pct=NO_BATTERY):
    """mv, pct: the battery (lib/battery.py: at most 10 x 2450 mV), or none."""
    return _frame(STATUS, hdr, struct.pack(STATUS_FMT, uptime_s, max(0, heap_free), reset_cause,
                                           max(-128, min(127, rssi)), lost, min(depth, 0xFFFF),
                                           dropped, version_code, mv, pct))


def security(hdr, event_json):
    return _frame(SECURITY, hdr, event_json.encode())


ACK_PREFIX = b"vn-ack1"
ACK_LEN = const(20)
ACK2_PREFIX = b"vn-ack2"
ACK2_LEN = const(24)


def ack_body(device_id, seq, t=-1):
    """What an acknowledgement's tag covers (device_id: the 6 id bytes;
    t: the gateway's time in a version 2 acknowledgement)."""
    if t < 0:
        return ACK_PREFIX + device_id + struct.pack(">I", seq)
    return ACK2_PREFIX + device_id + struct.pack(">II", seq, t)


def ack_seq(msg, device_id, tag_fn, equal):
    """The sequence number `msg` acknowledges, or -1 if it is not an
    authentic acknowledgement for this device (equal: constant-time)."""
    n = len(msg)
    if n == ACK_LEN:
        seq, t = struct.unpack_from(">I", msg, 0)[0], -1
    elif n == ACK2_LEN:
        seq, t = struct.unpack_from(">II", msg, 0)
    else:
        return -1
    if not equal(tag_fn(ack_body(device_id, seq, t))[:TAG_LEN], msg[n - TAG_LEN:]):
        return -1
    return seq


def ack_time(msg):
    """The gateway's time in a version 2 acknowledgement, else 0. Read it
    only from a message ack_seq() found authentic."""
    return struct.unpack_from(">II", msg, 0)[1] if len(msg) == ACK2_LEN else 0


def seal(body, tag_fn):
    """body + its tag; tag_fn(bytes) -> HMAC-SHA256 digest (32 bytes)."""
    return body + tag_fn(body)[:TAG_LEN]
