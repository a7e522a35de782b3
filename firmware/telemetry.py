"""Telemetry: turns what detection found into sealed frames in the outbox.

    tm = Telemetry(ks, box, SeqNo(esp32.NVS("vn_tel")), version_code)   # keeps
                                            # ks.device_id and ks.mac("telemetry") only
    tm.vitals(det)                          # every VITALS_S
    tm.alert(kind, raised, at_ms, det)      # at once, on every alert change (det None:
                                            # no sensor, a battery alert)
    tm.status(uptime_s, heap_free, reset_cause, rssi, lost, bat)   # every STATUS_S;
                                            # bat: lib/battery.Battery (.mv, .pct) or None
    tm.security(event_dict)                 # each security event
    Uplink(..., ack_check=tm.ack_seq,       # the gateway's acknowledgements,
           on_time=tm.sync_clock)           # and the time they carry

Each frame gets the next sequence number, the time (Unix seconds once the
gateway's acknowledgements set the RTC: firmware/clock.py; else the boot
number) and the HMAC tag with the telemetry sub-key, then is persisted
(firmware/outbox) before anything publishes it.
Guarantees: a frame is sealed and on flash when a call returns (or the
drop is counted: `box.dropped`; an alert that finds even the reserve full
is counted in `alerts_lost`); every HR and SpO2 goes out with its
validity and quality (frames.py: valid, hr_src, hr_q, spo2_q; the alert
frame carries the validity too). Non-guarantee: beat times are on the
sensor's sample clock (ms since sampling started), not the RTC.
"""
import binascii
import time

from firmware import frames
from micropython import const

VITALS_S = const(5)
STATUS_S = const(60)
_EVENT_MAX = const(480)  # bytes of one security event's JSON in a frame


class Telemetry:
    def __init__(self, ks, box, seq, version_code, clock=None):
        self.dev = binascii.unhexlify(ks.device_id)
        self._mac = ks.mac("telemetry")
        self.box = box
        self.seq = seq
        self.version_code = version_code
        self._clock = clock  # () -> Unix seconds or 0; default: the RTC
        self._beat_seen = -1
        self._last_beat_ms = -1
        self.alerts_lost = 0
        self.ack_t = 0  # the time in the last authentic acknowledgement (0: none)

    def _now(self):
        if self._clock is not None:
            return self._clock()
        from firmware.clock import now_unix
        return now_unix()

    def _hdr(self):
        wall = self._now()
        return (self.dev, self.seq.take(), wall if wall else self.seq.boot,
                time.ticks_ms() & 0x3FFFFFFF, (frames.T_WALL if wall else 0) | frames.ACK_TIMED)

    def _put(self, kind, hdr, body):
        frame = frames.seal(body, self._tag)
        try:
            return self.box.put(kind, hdr[1], frame)
        except OSError:  # OutboxFull: counted in box.dropped
            if kind == frames.ALERT:
                self.alerts_lost += 1
            return None

    def _tag(self, body):
        return self._mac.digest(body)

    def ack_seq(self, msg):
        """The frame an authentic gateway acknowledgement confirms, or -1."""
        from hmacsha import equal
        seq = frames.ack_seq(msg, self.dev, self._tag, equal)
        if seq >= 0:
            self.ack_t = frames.ack_time(msg)
        return seq

    def sync_clock(self, rtt_ms):
        """The uplink's word that the last authentic acknowledgement
        confirmed a frame first published rtt_ms ago: its time sets the
        clock (firmware/clock.sync). True if the clock is now trusted."""
        from firmware import clock
        return clock.sync(self.ack_t, rtt_ms)

    def _beats(self, det):
        """(ms, RR ms, flags) of the beats published since the last vitals
        frame: the ECG's (lib/rhythm: flutter waves never), else PPG pulses."""
        ecg = det.rhythm is not None
        src, rate = (det.rhythm, det.rate) if ecg else (det.pulse, det.rate // det.dec)
        if src is None:
            return []
        first = max(self._beat_seen + 1, src.count - frames.MAX_BEATS)
        out = []
        for i in range(first, src.count):
            ms = ((src.beat(i) if ecg else src.peak(i)) * 1000) // rate
            rr = ms - self._last_beat_ms if self._last_beat_ms >= 0 else 0
            out.append((ms, rr, (src.flags(i) & 7) if ecg else 8))
            self._last_beat_ms = ms
        self._beat_seen = src.count - 1
        return out

    def vitals(self, det):
        smp = det.smp
        q = det.pulse.sqi if det.pulse is not None else 0
        # frames.py: state bit0 lead off, bit1 finger off, bits 2-4 rhythm_state
        state = (1 if smp.lead_off else 0) | (2 if smp.finger_off else 0) | ((det.rhythm_state & 7) << 2)
        hdr = self._hdr()
        return self._put(frames.VITALS, hdr, frames.vitals(
            hdr, det.hr_x10, det.spo2_x10, q, state, self._beats(det),
            (1 if det.hr_valid else 0) | (2 if det.spo2_valid else 0), det.hr_src, det.hr_q, det.spo2_q))

    def alert(self, which, raised, at_ms, det):
        hdr = self._hdr()
        if det is None:
            return self._put(frames.ALERT, hdr, frames.alert(hdr, which, raised, 0, 0, at_ms))
        return self._put(frames.ALERT, hdr, frames.alert(
            hdr, which, raised, det.hr_x10, det.spo2_x10, at_ms,
            (1 if det.hr_valid else 0) | (2 if det.spo2_valid else 0)))

    def status(self, uptime_s, heap_free, reset_cause, rssi, lost, bat=None):
        hdr = self._hdr()
        return self._put(frames.STATUS, hdr, frames.status(
            hdr, uptime_s, heap_free, reset_cause, rssi, lost, self.box.depth,
            self.box.dropped_total(), self.version_code, bat.mv if bat else 0,
            bat.pct if bat else frames.NO_BATTERY))

    def security(self, event):
        import json
        text = json.dumps(event)
        if len(text) > _EVENT_MAX:  # cut fields, never the JSON (the gateway must parse it)
            text = json.dumps({"ev": event.get("ev"), "ms": event.get("ms"),
                               "reason": event.get("reason"), "truncated": True})
        hdr = self._hdr()
        return self._put(frames.SECURITY, hdr, frames.security(hdr, text))
