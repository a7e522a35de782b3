"""make sim's report (tools/sim/report.py) on synthetic beats and records:
the scoring and the waveform panels follow the recording's loop (the
simulated sensor plays a record from its top again when it ends, and from
its top at every sensor start), and every plotted axis says what it shows."""
from array import array

import pytest

from tools.sim import report

FS = 100  # a synthetic record: 10 s at 100 Hz, a beat every second at 0.5 s
N = 1000
REF = list(range(50, N, 100))


def _frames(beats_ms, start_ms=0, every_ms=5000, until_ms=None):
    """Vitals rows as the gateway stores them: a frame every 5 s of the
    node's clock (ms) up to until_ms, carrying the beats (ms since the
    sensor's start) that came since the last one. The score covers a
    segment up to its last frame less report._TAIL_MS (6 s)."""
    until_ms = until_ms if until_ms is not None else max(beats_ms) + 10000
    rows, sent = [], 0
    for t in range(every_ms, until_ms + 1, every_ms):
        mine = [b for b in beats_ms[sent:] if b < t]
        sent += len(mine)
        rows.append({"kind": "vitals", "ms": start_ms + t, "beats": [(b, 1000, 0) for b in mine],
                     "hr_x10": 600, "spo2_x10": 970, "quality": 100, "hr_valid": True,
                     "spo2_valid": True, "hr_q": 100, "spo2_q": 100})
    return rows


def test_the_reference_repeats_with_the_record():
    beats, spans = report.looped(REF, [(200, 300)], N, FS, 25000)
    assert beats == [k * 10000 + 500 + 1000 * i for k in range(3) for i in range(10)][:25]
    assert spans == [(2000, 3000), (12000, 13000), (22000, 23000)]
    # an episode open at the record's end ends with the pass
    assert report.looped([], [(900, 1 << 40)], N, FS, 15000)[1] == [(9000, 10000), (19000, 20000)]


def test_a_long_run_is_scored_against_every_pass_of_the_record():
    """Almost four passes (frames to 45 s: scored to 39 s), every beat
    found: nothing missed, nothing false (scored against the first pass
    only, the later beats were all false positives)."""
    det = report.looped(REF, [], N, FS, 39000)[0]
    s = report.score_beats(_frames(det, until_ms=45000), [0], 50000, REF, [], N, FS)
    assert (s["tp"], s["fn"], s["fp"]) == (39, 0, 0)
    assert s["se"] == s["ppv"] == 100.0 and s["beats_reference"] == s["beats_detected"] == 39


def test_beats_missed_in_a_later_pass_count_as_missed():
    ref_ms = report.looped(REF, [], N, FS, 39000)[0]
    det = [b for b in ref_ms if not 20000 <= b < 30000]  # the third pass: nothing detected
    det += [25250]  # and one beat nowhere near a reference one
    s = report.score_beats(_frames(sorted(det), until_ms=45000), [0], 50000, REF, [], N, FS)
    assert (s["tp"], s["fn"], s["fp"]) == (29, 10, 1)
    assert s["se"] == 74.36


def test_each_sensor_start_plays_the_record_from_its_top():
    """A reboot at 23 s of the node's clock: the second segment's beats
    count from the restart, against the record from its top."""
    restart = 23000
    first = [b for b in report.looped(REF, [], N, FS, 21000)[0]]
    second = [b for b in report.looped(REF, [], N, FS, 30000)[0]]
    rows = _frames(first, until_ms=21000) + _frames(second, start_ms=restart, until_ms=40000)
    s = report.score_beats(rows, [0, restart], restart + 40000, REF, [], N, FS)
    assert s["fn"] == s["fp"] == 0 and s["tp"] == s["beats_reference"] > 40


def test_pieces_of_a_looped_record():
    assert report.pieces(950, 1120, 1000) == [(950, 1000), (0, 120)]
    assert report.pieces(2050, 2100, 1000) == [(50, 100)]
    assert report.pieces(0, 2500, 1000) == [(0, 1000), (0, 1000), (0, 500)]


@pytest.fixture
def records(tmp_path):
    """A 10 s ECG (WFDB, 360 Hz: a ramp, so every sample says where it is
    in the record) and a 5 s pleth (int16 at 125 Hz, a ramp too)."""
    import numpy as np
    import wfdb
    ecg = np.arange(3600, dtype=float).reshape(-1, 1) / 1000.0  # mV
    wfdb.wrsamp("rec", fs=360, units=["mV"], sig_name=["MLII"], p_signal=ecg, fmt=["16"],
                adc_gain=[1000.0], baseline=[0], write_dir=str(tmp_path))
    pleth = tmp_path / "pleth.i16"
    pleth.write_bytes(array("h", range(625)).tobytes())
    return {"chip": "max86150", "ecg": str(tmp_path / "rec"), "pleth_i16": str(pleth)}


def test_the_waveforms_follow_the_records_past_their_end(records):
    """The default run outlasts BIDMC 01 (480 s): the last seconds shown are
    the pass the sensor was playing, not an empty panel."""
    peaks = {"qrs_ms": [21000, 25000, 29000], "ppg_ms": [20500, 24500, 28500]}  # 29.5 s: ECG pass 3
    fig = report.figure("dev", _frames([500, 1500]), [0], records, peaks, "test")
    ecg, ppg = fig.axes[0].lines[0], fig.axes[1].lines[0]
    x, y = ecg.get_xdata(), ecg.get_ydata()
    assert len(x) == 8 * 360 and x[0] == pytest.approx(21.5) and x[-1] < 29.5
    # 21.5 s into the run is 1.5 s into the record's third pass
    assert [round(v * 1000) for v in y[:3]] == [540, 541, 542]
    assert round(y[-1] * 1000) == (29.5 * 360 - 1) % 3600
    x, y = ppg.get_xdata(), ppg.get_ydata()
    assert len(x) == 1000 and x[0] == pytest.approx(21.5, abs=0.01)
    # 21.5 s is 1.5 s into the pleth's fifth pass; 25 s starts its sixth
    assert list(y[:2]) == [187, 188] and list(y[437:439]) == [624, 0]
    assert "pass 3" in fig.axes[0].get_xlabel() and "pass 5" in fig.axes[1].get_xlabel()


def test_every_axis_names_its_quantity_and_unit(records):
    fig = report.figure("dev", _frames([500, 1500]), [0], records, {"qrs_ms": [1000]}, "test")
    labels = [(a.get_xlabel(), a.get_ylabel()) for a in fig.axes]
    assert all(x and y for x, y in labels), labels
    assert "(mV)" in labels[0][1] and "(s)" in labels[0][0]
    assert "a.u." in labels[1][1]
    assert "(/min)" in labels[2][1] and "(%)" in labels[2][1] and "(s)" in labels[2][0]
    assert "0-100" in labels[3][1]


def test_without_an_ecg_the_panel_says_so(records):
    spec = dict(records, chip="max30102")
    fig = report.figure("dev", _frames([500]), [0], spec, {"ppg_ms": [1000]}, "test")
    assert "no ECG" in fig.axes[0].get_title() and not fig.axes[0].lines
    assert fig.axes[1].lines[0].get_ydata().size > 0


def test_latency_is_from_the_nodes_measurement_to_the_gateways_storing():
    from tools.sim import report
    epoch = 1800000000
    rows = [  # ms: the node's clock at the frame; received_at: the world's clock at storing
        {"kind": "alert", "raised": True, "ms": 10000, "received_at": epoch + 10.4},
        {"kind": "alert", "raised": False, "ms": 20000, "received_at": epoch + 90.0},  # a clear
        {"kind": "alert", "raised": True, "ms": 30000, "received_at": epoch + 32.0},
        {"kind": "vitals", "ms": 5000, "received_at": epoch + 5.5},
        {"kind": "vitals", "ms": 150000, "received_at": epoch + 210.0},  # queued in an outage
        {"kind": "status", "ms": 60000, "received_at": epoch + 999.0},
    ]
    alerts, vitals = report.latencies(rows, epoch)
    assert [round(x) for x in alerts] == [400, 2000]
    assert [round(x, 1) for x in vitals] == [0.5, 60.0]
    assert report.p95([]) is None and report.p95([5.0]) == 5.0
    assert report.p95(list(range(1, 101))) == 95 and report.p95(list(range(1, 21))) == 19


def _panel(fig):
    return next(a for a in fig.axes if a.get_ylabel() == "supply current (mA)")


def test_the_png_ends_with_the_supply_current_and_its_average():
    # 1 s at 100 mA, 1 s at 20 mA, a last half second at 40 mA: the average over
    # the 2.5 s is (100 + 20 + 40 x 0.5) / 2.5 = 56 mA, 500 mAh / 56 mA = 8.9 h
    points = [(0.0, 1.0, 100.0), (1.0, 1.0, 20.0), (2.0, 0.5, 40.0)]
    fig = report.figure("dev", _frames([500]), [0], {}, {}, "test",
                        current={"points": points, "capacity_mah": 500})
    assert len(fig.axes) == 5 and _panel(fig) is fig.axes[4]
    ax = fig.axes[4]
    step = ax.patches[0]                                   # one step per bin
    values, edges = step.get_data()[:2]
    assert list(values) == [100.0, 20.0, 40.0] and list(edges) == [0.0, 1.0, 2.0, 2.5]
    avg = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(avg) == 1 and list(avg[0].get_ydata()) == [pytest.approx(56.0)] * 2
    assert "56.0 mA" in avg[0].get_label() and "8.9 h on 500 mAh" in avg[0].get_label()
    assert ax.get_xlabel() == "simulated time (s)" and "dev" in ax.get_title()


def test_a_timeline_that_filled_up_says_what_it_covers():
    fig = report.figure("dev", _frames([500]), [0], {}, {}, "test",
                        current={"points": [(0.0, 1000.0, 50.0), (1000.0, 1000.0, 40.0)],
                                 "full": True})
    assert "the first 2000 s of the run" in fig.axes[4].get_title()


def test_without_a_timeline_the_panel_says_so():
    fig = report.figure("dev", _frames([500]), [0], {}, {}, "test", current={"points": None})
    assert "no power timeline" in fig.axes[4].get_title() and not fig.axes[4].patches


def test_the_png_is_written_with_the_panel(tmp_path):
    png = tmp_path / "w.png"
    report.plot(png, "dev", _frames([500]), [0], {}, {}, "test",
                current={"points": [(0.0, 1.0, 50.0)]})
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    height = int.from_bytes(head[20:24], "big")
    assert height > 11 * 90   # taller than the four-panel figure (11 in at 90 dpi)
