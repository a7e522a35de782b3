"""Reading telemetry frames (firmware/frames.py has the layout): the
gateway's decoder, device-compatible code the node itself never loads.

    d = framedec.decode(frame)   # dict of fields; FrameError if malformed

Guarantees: decode() accepts exactly the version-1 and version-2 layouts
and raises FrameError (never another exception) for anything else,
including values no measurement has (hr_x10 over 4000, spo2_x10 over
1000) and security events that are not strict JSON (NaN, 1e999999,
duplicate keys, integers beyond 32 bits: firmware/sjson.py); a
newer version is refused by name, so a gateway tells "too new" from
"garbage".

Vitals fields (both versions): hr_x10, spo2_x10, quality, lead_off,
finger_off, beats [(ms, rr_ms, flags)], and the quality contract:
  hr_valid, spo2_valid  bool: the node vouches for the value (version 1:
                        always False - those nodes made no such judgement)
  hr_src                "ecg", "ppg" or None
  hr_q, spo2_q          0-100 (version 1: None)
  vf, af, asystole      the node's rhythm judgement (version 1: False)
Alert frames also carry hr_valid and spo2_valid (version 1: False).
Status frames: battery_mv and battery_pct, None when the node has no
battery monitor or is older than it (a status without those fields).
"""
import struct

from firmware.frames import (ACK_TIMED, ALERT, ALERT_FMT, BEAT_FMT, HEAD, HEAD_LEN, KINDS,
                             MAX_BEATS, NO_BATTERY, SECURITY, STATUS, STATUS_FMT, T_WALL, TAG_LEN,
                             VERSION, VITALS, VITALS_HEAD, FrameError, ack_body)

VERSIONS = (1, 2)
# version-2 bits and codes (firmware/frames.py's docstring has the layout)
HR_VALID = 1
SPO2_VALID = 2
ST_VF = 4
ST_AF = 8
ST_ASYS = 16
_SRC = {0: None, 1: "ecg", 2: "ppg"}
HR_X10_MAX = 4000  # 400 /min: no heart beats faster; a larger value is not a measurement
SPO2_X10_MAX = 1000  # 100.0 %
VITALS_HEAD_LEN = struct.calcsize(VITALS_HEAD)
BEAT_LEN = struct.calcsize(BEAT_FMT)
STATUS_LEN = struct.calcsize(STATUS_FMT)
STATUS_OLD_LEN = struct.calcsize(STATUS_FMT[:-2])  # without battery mV and %


def split(frame):
    """(body, tag) of a sealed frame, after a length check."""
    if len(frame) < HEAD_LEN + TAG_LEN:
        raise FrameError("frame of %d bytes is shorter than a header and a tag" % len(frame))
    return frame[:-TAG_LEN], frame[-TAG_LEN:]


def decode(frame):
    """The fields of a sealed frame as a dict (tag not checked here)."""
    body, tag = split(frame)
    v, kind, dev, seq, time, ms, flags, n = struct.unpack(HEAD, body[:HEAD_LEN])
    if v not in VERSIONS:
        raise FrameError("frame version %d; this decoder reads versions 1 to %d" % (v, VERSION))
    p = body[HEAD_LEN:]
    if n != len(p):
        raise FrameError("payload length field %d, but %d bytes follow" % (n, len(p)))
    d = {"version": v, "kind": KINDS[kind] if 0 < kind < len(KINDS) else kind, "device": dev,
         "seq": seq, "time": time, "ms": ms, "wall": bool(flags & T_WALL),
         "acks_timed": bool(flags & ACK_TIMED), "tag": tag}
    if kind == VITALS:
        d.update(_vitals(p, n, v))
    elif kind == ALERT:
        want = 10 if v == 1 else struct.calcsize(ALERT_FMT)
        if n != want:
            raise FrameError("alert payload of %d bytes" % n)
        if v == 1:
            which, up, hr, sp, at = struct.unpack(">BBHHI", p)
            valid = 0
        else:
            which, up, hr, sp, at, valid = struct.unpack(ALERT_FMT, p)
            if valid > 3:
                raise FrameError("alert valid bits 0x%02x" % valid)
        if up > 1:
            raise FrameError("alert raised flag %d" % up)
        _ranges(hr, sp)
        d.update(alert=which, raised=bool(up), hr_x10=hr, spo2_x10=sp, at_ms=at,
                 hr_valid=bool(valid & HR_VALID), spo2_valid=bool(valid & SPO2_VALID))
    elif kind == STATUS:
        if n == STATUS_LEN:
            f = struct.unpack(STATUS_FMT, p)
        elif n == STATUS_OLD_LEN:  # a node from before the battery monitor
            f = struct.unpack(STATUS_FMT[:-2], p) + (0, NO_BATTERY)
        else:
            raise FrameError("status payload of %d bytes" % n)
        mv, pct = f[8], f[9]
        if pct == NO_BATTERY:
            if mv:
                raise FrameError("status battery %d mV without a percentage" % mv)
            mv = pct = None
        elif pct > 100:
            raise FrameError("status battery %d %%" % pct)
        d.update(uptime_s=f[0], heap_free=f[1], reset_cause=f[2], rssi=f[3], samples_lost=f[4],
                 queue_depth=f[5], dropped=f[6], version_code=f[7], battery_mv=mv,
                 battery_pct=pct)
    elif kind == SECURITY:
        from firmware.sjson import JsonError, loads
        try:
            ev = loads(p)
        except JsonError as e:  # NaN, 1e999999, duplicate keys... are malformed
            raise FrameError("security payload is not strict JSON (%s)" % e)
        if not isinstance(ev, dict):
            raise FrameError("security payload is not an object")
        d["event"] = ev
    else:
        raise FrameError("unknown frame kind %d" % kind)
    return d


def _ranges(hr, sp):
    if hr > HR_X10_MAX:
        raise FrameError("hr_x10 %d over %d" % (hr, HR_X10_MAX))
    if sp > SPO2_X10_MAX:
        raise FrameError("spo2_x10 %d over %d" % (sp, SPO2_X10_MAX))


def _vitals(p, n, v):
    if v == 1:
        if n < 7:
            raise FrameError("vitals payload of %d bytes" % n)
        hr, sp, q, st, nb = struct.unpack(">HHBBB", p[:7])
        if nb > MAX_BEATS or n != 7 + 6 * nb:
            raise FrameError("vitals payload: %d beats in %d bytes" % (nb, n))
        if q > 100:
            raise FrameError("quality %d over 100" % q)
        _ranges(hr, sp)
        beats = [struct.unpack(">IH", p[7 + 6 * i:13 + 6 * i]) + (0,) for i in range(nb)]
        return dict(hr_x10=hr, spo2_x10=sp, quality=q, lead_off=bool(st & 1), finger_off=bool(st & 2),
                    beats=beats, hr_valid=False, spo2_valid=False, hr_src=None, hr_q=None, spo2_q=None,
                    vf=False, af=False, asystole=False)
    if n < VITALS_HEAD_LEN:
        raise FrameError("vitals payload of %d bytes" % n)
    hr, sp, q, st, valid, src, hq, sq, nb = struct.unpack(VITALS_HEAD, p[:VITALS_HEAD_LEN])
    if nb > MAX_BEATS or n != VITALS_HEAD_LEN + BEAT_LEN * nb:
        raise FrameError("vitals payload: %d beats in %d bytes" % (nb, n))
    for name, val in (("quality", q), ("hr_q", hq), ("spo2_q", sq)):
        if val > 100:
            raise FrameError("%s %d over 100" % (name, val))
    if valid > 3:
        raise FrameError("vitals valid bits 0x%02x" % valid)
    _ranges(hr, sp)
    if src not in _SRC:
        raise FrameError("vitals hr_src %d" % src)
    if st > 31:
        raise FrameError("vitals state bits 0x%02x" % st)
    o = VITALS_HEAD_LEN
    beats = [struct.unpack(BEAT_FMT, p[o + BEAT_LEN * i:o + BEAT_LEN * (i + 1)]) for i in range(nb)]
    return dict(hr_x10=hr, spo2_x10=sp, quality=q, lead_off=bool(st & 1), finger_off=bool(st & 2),
                beats=beats, hr_valid=bool(valid & HR_VALID), spo2_valid=bool(valid & SPO2_VALID),
                hr_src=_SRC[src], hr_q=hq, spo2_q=sq, vf=bool(st & ST_VF), af=bool(st & ST_AF),
                asystole=bool(st & ST_ASYS))


def ack(device_id, seq, tag_fn, t=-1):
    """The gateway's acknowledgement of frame `seq` (frames.py has the
    layout; here because only the gateway builds one); with t (its clock,
    Unix seconds, when it acknowledged) the version 2 form."""
    head = struct.pack(">I", seq) if t < 0 else struct.pack(">II", seq, t)
    return head + tag_fn(ack_body(device_id, seq, t))[:TAG_LEN]
