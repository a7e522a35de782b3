"""make soak's bookkeeping (tools/soak.py), on its own: the fault day it
plans, how a fault going on at a reset carries into the next boot's run,
and the checks the summary's targets rest on. The 24-hour run itself is a
benchmark (docs/soak.md), not a test."""
from tools import soak


def test_every_cycle_has_each_fault_once_one_after_another_and_a_quiet_end():
    day = soak.plan(24, 120, seed=7)
    kinds = [k for k, _, _ in soak.CYCLE]
    assert len(day) == 11 * len(kinds)  # (24 h - 20 quiet min - 2 min) // 2 h cycles
    for c in range(11):
        cycle = day[c * len(kinds):(c + 1) * len(kinds)]
        assert [f["kind"] for f in cycle] == kinds
        for a, b in zip(cycle, cycle[1:]):
            assert a["until"] < b["at"]  # no two faults at once: each recovery is its own
    assert day[-1]["until"] <= 24 * 3600 - soak.QUIET_S
    assert soak.plan(24, 120, seed=7) == day and soak.plan(24, 120, seed=8) != day


def test_the_two_updates_are_pushed_in_the_cycles_asked_for():
    urls = {"confirm": "http://a/", "revert": "http://b/", "confirm_cycle": 2, "revert_cycle": 7}
    ota = [f for f in soak.plan(24, 120, 1, urls) if f["kind"] == "ota"]
    assert [f["url"] for f in ota] == ["http://a/", "http://b/"]
    assert 2 * 7200 < ota[0]["at"] < 3 * 7200 + 120 and 7 * 7200 < ota[1]["at"] < 8 * 7200 + 120


def test_a_fault_going_on_at_a_reset_goes_on_without_being_made_again():
    faults = [{"kind": "broker", "at": 100, "until": 300},
              {"kind": "power", "at": 200, "until": 200},
              {"kind": "finger", "at": 400, "until": 450}]
    after = soak.window(faults, 200.0, 1000)  # the run that boots from the power cut
    assert after == [{"kind": "broker", "at": 0, "until": 100.0, "cont": True},
                     {"kind": "finger", "at": 200.0, "until": 250.0}]
    # the cut printed to the ms: the run starting there does not cut power again
    assert [f["kind"] for f in soak.window(faults, 199.9995, 1000)] == ["broker", "finger"]
    assert [f["kind"] for f in soak.window(faults, 0, 150)] == ["broker"]


def test_sequence_accounting_finds_a_repeat_and_a_lost_frame():
    boots = [{"seq0": 0, "seq1": 5}, {"seq0": 64, "seq1": 66}]  # a reboot skips to the mark
    taken, repeats, missing = soak.seq_accounting(boots, [0, 1, 2, 3, 4, 64, 65])
    assert (len(taken), repeats, missing) == (7, 0, [])
    _, repeats, missing = soak.seq_accounting(boots + [{"seq0": 65, "seq1": 67}],
                                              [0, 1, 2, 4, 64, 65, 66])
    assert repeats == 1 and missing == [3]
    # a boot cut before its telemetry started took no number
    assert soak.seq_accounting([{"seq0": 9}], [])[0] == set()


def test_heap_slope_is_the_least_squares_growth_per_hour():
    assert soak.slope([1000] * 24) == 0
    assert abs(soak.slope([1000 + 50 * h for h in range(24)]) - 50) < 1e-9
    assert soak.slope([5]) == 0


def test_runs_merge_into_one_day_hour_by_hour():
    first = {"resets": [1], "crashes": 0, "sensor_samples_produced": 10,
             "heap_peak_per_hour": [900, 950], "heap_min_free_per_hour": [20, 15],
             "peak_heap_bytes": 950, "min_free_heap_bytes": 15, "vm": "v"}
    second = {"resets": [2], "crashes": 1, "sensor_samples_produced": 5,
              "heap_peak_per_hour": [0, 980, 940], "heap_min_free_per_hour": [99, 12, 30],
              "peak_heap_bytes": 980, "min_free_heap_bytes": 12, "vm": "v"}
    m = soak.merge([first, second])
    assert m["resets"] == [1, 2] and m["crashes"] == 1 and m["sensor_samples_produced"] == 15
    assert m["heap_peak_per_hour"] == [900, 980, 940]  # hour 0 of the second run: before it began
    assert m["heap_min_free_per_hour"] == [20, 12, 30]
    assert (m["peak_heap_bytes"], m["min_free_heap_bytes"]) == (980, 12)
