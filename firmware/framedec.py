"""Reading telemetry frames (firmware/frames.py has the layout): the
gateway's decoder, device-compatible code the node itself never loads.

    d = framedec.decode(frame)   # dict of fields; FrameError if malformed

Guarantees: decode() accepts exactly the version-1 layout and raises
FrameError (never another exception) for anything else; a newer version
is refused by name, so a gateway tells "too new" from "garbage".
"""
import struct

from firmware.frames import (ALERT, HEAD, HEAD_LEN, KINDS, MAX_BEATS, SECURITY, STATUS,
                             STATUS_FMT, T_WALL, TAG_LEN, VERSION, VITALS, FrameError)


def split(frame):
    """(body, tag) of a sealed frame, after a length check."""
    if len(frame) < HEAD_LEN + TAG_LEN:
        raise FrameError("frame of %d bytes is shorter than a header and a tag" % len(frame))
    return frame[:-TAG_LEN], frame[-TAG_LEN:]


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
        if n != struct.calcsize(STATUS_FMT):
            raise FrameError("status payload of %d bytes" % n)
        f = struct.unpack(STATUS_FMT, p)
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
