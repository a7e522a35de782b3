"""Telemetry on the node: the frame layout (byte for byte), the decoder's
refusals, sequence numbers across reboots and power loss, and the flash
outbox: order, replay after reboot, drop policy, full flash, power loss
at every flash operation."""
import struct

import simboard
from devtest import raises
from simflash import PowerLoss
from hmacsha import HMAC

from firmware import framedec, frames, outbox, storage
from firmware.frames import FrameError
from firmware.seqno import BLOCK, SeqNo

KEY = bytes(range(32))
DEV = b"\x24\x0a\xc4\x00\x00\x01"


def _tag(body):
    return HMAC(KEY).digest(body)


def _nvs():
    import esp32
    return esp32.NVS("vn_tel")


def test_a_vitals_frame_is_laid_out_byte_for_byte_and_decodes():
    hdr = (DEV, 7, 1800000000, 12345, frames.T_WALL)
    body = frames.vitals(hdr, 721, 975, 88, 2 | 8, [(1000, 0, 0), (1833, 833, 6)],
                         valid=1, hr_src=1, hr_q=75, spo2_q=40)
    want = (b"\x02\x01" + DEV + struct.pack(">IIIBH", 7, 1800000000, 12345, 1, 11 + 14)
            + struct.pack(">HHBBBBBBB", 721, 975, 88, 10, 1, 1, 75, 40, 2)
            + struct.pack(">IHB", 1000, 0, 0) + struct.pack(">IHB", 1833, 833, 6))
    assert body == want
    f = frames.seal(body, _tag)
    assert len(f) == len(want) + 16 and f[-16:] == HMAC(KEY).digest(want)[:16]
    d = framedec.decode(f)
    assert (d["version"], d["kind"], d["device"], d["seq"], d["time"], d["ms"], d["wall"]) == \
        (2, "vitals", DEV, 7, 1800000000, 12345, True)
    assert (d["hr_x10"], d["spo2_x10"], d["quality"], d["lead_off"], d["finger_off"]) == \
        (721, 975, 88, False, True)
    # the quality contract the gateway reads: the HR is vouched for, the SpO2 is not
    assert (d["hr_valid"], d["spo2_valid"], d["hr_src"], d["hr_q"], d["spo2_q"]) == \
        (True, False, "ecg", 75, 40)
    assert (d["vf"], d["af"], d["asystole"]) == (False, True, False)
    assert [tuple(b) for b in d["beats"]] == [(1000, 0, 0), (1833, 833, 6)]


def test_a_version_1_frame_still_decodes_and_is_never_valid():
    body = (b"\x01\x01" + DEV + struct.pack(">IIIBH", 3, 5, 600, 0, 7 + 6)
            + struct.pack(">HHBBB", 1690, 0, 20, 0, 1) + struct.pack(">IH", 400, 0))
    d = framedec.decode(frames.seal(body, _tag))
    assert (d["version"], d["hr_x10"], d["quality"], d["beats"]) == (1, 1690, 20, [(400, 0, 0)])
    assert (d["hr_valid"], d["spo2_valid"], d["hr_src"], d["hr_q"]) == (False, False, None, None)
    body = b"\x01\x02" + DEV + struct.pack(">IIIBH", 4, 5, 600, 0, 10) + struct.pack(">BBHHI", 3, 1, 0, 960, 9)
    d = framedec.decode(frames.seal(body, _tag))
    assert (d["version"], d["alert"], d["raised"], d["spo2_x10"], d["hr_valid"], d["spo2_valid"]) == \
        (1, 3, True, 960, False, False)


def test_alert_status_and_security_frames_round_trip():
    hdr = (DEV, 9, 3, 500, 0)
    d = framedec.decode(frames.seal(frames.alert(hdr, 3, True, 0, 960, 77000, 2), _tag))
    assert (d["kind"], d["alert"], d["raised"], d["spo2_x10"], d["at_ms"], d["wall"]) == \
        ("alert", 3, True, 960, 77000, False)
    assert (d["hr_valid"], d["spo2_valid"]) == (False, True)
    d = framedec.decode(frames.seal(frames.status(hdr, 3600, 51234, 1, -67, 5, 12, 2, 6000), _tag))
    assert (d["uptime_s"], d["heap_free"], d["reset_cause"], d["rssi"], d["samples_lost"],
            d["queue_depth"], d["dropped"], d["version_code"]) == (3600, 51234, 1, -67, 5, 12, 2, 6000)
    d = framedec.decode(frames.seal(frames.security(hdr, '{"ev": "ota-reject", "reason": "hash"}'),
                                    _tag))
    assert d["event"] == {"ev": "ota-reject", "reason": "hash"}


def test_the_decoder_refuses_malformed_frames_by_name():
    good = frames.seal(frames.alert((DEV, 1, 1, 1, 0), 0, False, 0, 0, 0), _tag)
    cases = [(good[:20], "shorter"), (good[:-1], "length"), (b"\x03" + good[1:], "version 3"),
             (good[:1] + b"\x09" + good[2:], "unknown frame kind"),
             (frames.seal(frames.vitals((DEV, 1, 1, 1, 0), 0, 0, 0, 0, []), _tag)[:33] + b"\x00" * 16,
              "length")]
    for offset, value, words in ((4, 101, "quality"), (6, 4, "valid bits"), (7, 3, "hr_src"),
                                 (8, 101, "hr_q"), (9, 200, "spo2_q"), (5, 64, "state bits")):
        bad = bytearray(frames.seal(frames.vitals((DEV, 1, 1, 1, 0), 0, 0, 50, 0, []), _tag))
        bad[frames.HEAD_LEN + offset] = value
        cases.append((bytes(bad), words))
    bad = bytearray(good)
    bad[frames.HEAD_LEN + 10] = 8
    cases.append((bytes(bad), "valid bits"))
    for frame, words in cases:
        e = raises(FrameError, framedec.decode, frame)
        assert words in str(e), (words, str(e))


def test_sequence_numbers_never_repeat_across_reboots_and_use_one_write_per_block():
    b = simboard.new_board()
    s = SeqNo(_nvs())
    taken = [s.take() for _ in range(BLOCK + 3)]
    assert taken == list(range(BLOCK + 3)) and s.boot == 1
    b.reset(simboard.SOFT_RESET)
    s2 = SeqNo(_nvs())
    first = s2.take()
    assert first > taken[-1] and first - taken[-1] <= BLOCK and s2.boot == 2


def test_sequence_numbers_survive_power_loss_at_every_nvs_commit():
    cut_points = 0
    for k in range(1, 8):
        b = simboard.new_board()
        s = SeqNo(_nvs())
        before = [s.take() for _ in range(BLOCK - 2)]
        b.faults.arm(k)
        try:
            for _ in range(4 * BLOCK):
                before.append(s.take())
            continue  # fewer ops than k: nothing to cut
        except PowerLoss:
            cut_points += 1
        b.power_cycle()
        after = SeqNo(_nvs()).take()
        assert after > max(before), (k, after, max(before))
    assert cut_points >= 3


def _box(blocks=None):
    b = simboard.new_board(fs_blocks=blocks)
    storage.use(b.fs)
    return b, outbox.Outbox()


def test_the_outbox_replays_in_order_after_a_reboot_and_forgets_acked_frames():
    b, box = _box()
    for seq in range(5):
        box.put(frames.VITALS if seq != 2 else frames.ALERT, seq, b"frame-%d" % seq)
    box.ack(box.oldest())
    b.reset(simboard.SOFT_RESET)
    box = outbox.Outbox()
    got = []
    while box.oldest():
        got.append(box.read(box.oldest()))
        box.ack(box.oldest())
    assert got == [b"frame-1", b"frame-2", b"frame-3", b"frame-4"]


def test_a_full_outbox_drops_the_oldest_vitals_never_an_alert():
    b, box = _box()
    box.put(frames.ALERT, 0, b"alert-0")
    for seq in range(1, outbox.MAX_FRAMES + 10):
        box.put(frames.VITALS, seq, b"v%d" % seq)
    assert box.depth == outbox.MAX_FRAMES and box.dropped["v"] == 10
    assert box.count(frames.ALERT) == 1 and box.count(frames.VITALS) == outbox.MAX_FRAMES - 1
    assert box.read(box.oldest()) == b"alert-0"
    names = []
    while box.oldest():
        names.append(box.oldest())
        box.ack(box.oldest())
    assert names[1] == "%08xv" % 11  # vitals 1..10 went first
    # full of alerts: the reserve takes RESERVE more, then OutboxFull, counted
    for seq in range(outbox.MAX_FRAMES + outbox.RESERVE):
        box.put(frames.ALERT, 1000 + seq, b"a")
    raises(outbox.OutboxFull, box.put, frames.ALERT, 5000, b"a")
    assert box.dropped["a"] == 1
    assert box.put(frames.VITALS, 5001, b"v") is None and box.dropped["v"] == 11


def test_a_full_flash_costs_the_oldest_vitals_and_keeps_the_alert():
    b, box = _box(blocks=12)
    seq = 0
    while True:  # fill the flash with vitals until a drop happens
        box.put(frames.VITALS, seq, b"x" * 3000)
        seq += 1
        if box.dropped["v"]:
            break
    box.put(frames.ALERT, seq, b"the alert")
    names = []
    while box.oldest():
        names.append(box.oldest())
        box.ack(box.oldest())
    assert names[-1] == "%08xa" % seq and box.dropped["a"] == 0


def test_the_outbox_survives_power_loss_at_every_flash_operation():
    def run(b, box, done):
        for seq in range(6):
            box.put(frames.ALERT if seq % 3 == 0 else frames.VITALS, seq, b"payload-%d" % seq * 9)
            done.append(("put", seq))
            if seq % 2:
                n = box.oldest()
                box.ack(n)
                done.append(("ack", int(n[:8], 16)))

    b, box = _box()
    start = b.faults.ops
    run(b, box, [])
    total = b.faults.ops - start
    assert total >= 20
    for k in range(1, total + 1):
        b, box = _box()
        done = []
        b.faults.arm(k)
        try:
            run(b, box, done)
        except PowerLoss:
            pass
        b.power_cycle()
        box = outbox.Outbox()
        queued = {s for op, s in done if op == "put"} - {s for op, s in done if op == "ack"}
        present = {}
        for e in b.fs.ilistdir(outbox.DIR):
            assert len(e[0]) == 9, (k, e[0])  # no tmp left behind
            present[int(e[0][:8], 16)] = box.read(e[0])
        # every frame whose put() returned and that was not acked is there,
        # whole; at most the one in flight at the cut is extra (or an ack's)
        assert queued <= set(present), (k, queued, present)
        assert len(set(present) - queued) <= 1, (k, queued, present)
        for s, data in present.items():
            assert data == b"payload-%d" % s * 9, (k, s)


class _Keys:
    device_id = "240ac4000001"

    def mac(self, purpose):
        assert purpose == "telemetry"
        return HMAC(KEY)


def test_a_long_security_event_still_arrives_as_parseable_json():
    b, box = _box()
    from firmware.telemetry import Telemetry
    tm = Telemetry(_Keys(), box, SeqNo(_nvs()), 6000, clock=lambda: 0)
    tm.security({"ev": "ota-reject", "ms": 5, "reason": "hash", "detail": "x" * 2000})
    d = framedec.decode(box.read(box.oldest()))
    assert d["event"] == {"ev": "ota-reject", "ms": 5, "reason": "hash", "truncated": True}



def test_the_outbox_ram_does_not_grow_with_the_queue():
    """What it keeps in RAM is a fixed window of the oldest frames and a
    count per kind: a queue of 256 frames costs what a queue of 2 does."""
    import gc

    from devtest import ON_MICROPYTHON
    b, box = _box()

    def used():
        gc.collect()
        return gc.mem_alloc()
    for seq in range(2):
        box.put(frames.VITALS, seq, b"v" * 60)
    box.sent(box.oldest(), 5)
    small = used()
    for seq in range(2, outbox.MAX_FRAMES + 40):
        box.put(frames.ALERT if seq % 50 == 0 else frames.VITALS, seq, b"v" * 60)
    while box.oldest():
        box.sent(box.oldest(), 7)  # a whole window in flight
    full = used()
    assert box.depth == outbox.MAX_FRAMES and box.in_flight == outbox.WINDOW
    assert box.dropped["v"] == 40 and box.dropped["a"] == 0  # 280 put, the alerts stayed
    if ON_MICROPYTHON:
        assert full - small <= 64, full - small
    # and it still hands frames out in order, all of them
    box.resend()
    seen = []
    while box.oldest():
        n = box.oldest()
        seen.append(int(n[:8], 16))
        box.ack(n)
    assert seen == sorted(seen) and len(seen) == outbox.MAX_FRAMES and box.depth == 0
    assert [s for s in seen if s % 50 == 0] == [50, 100, 150, 200, 250]


def test_the_gateway_acknowledgement_carries_its_time_byte_for_byte():
    from hmacsha import equal
    t = 1800000123
    a = framedec.ack(DEV, 7, _tag, t)
    assert a == struct.pack(">II", 7, t) + HMAC(KEY).digest(
        b"vn-ack2" + DEV + struct.pack(">II", 7, t))[:16]
    assert frames.ack_seq(a, DEV, _tag, equal) == 7 and frames.ack_time(a) == t
    v1 = framedec.ack(DEV, 7, _tag)  # an older gateway's: no time
    assert v1 == struct.pack(">I", 7) + HMAC(KEY).digest(b"vn-ack1" + DEV + struct.pack(">I", 7))[:16]
    assert frames.ack_seq(v1, DEV, _tag, equal) == 7 and frames.ack_time(v1) == 0
    moved = a[:4] + struct.pack(">I", t + 86400) + a[8:]  # another time under the tag
    for bad in (a[:-1], a + b"\0", moved, a[:8] + v1[4:]):
        assert frames.ack_seq(bad, DEV, _tag, equal) == -1
