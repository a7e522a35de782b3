"""Sleeping must not change a beat: the node hands the detectors whatever
the FIFO held at each drain - 17 samples when it wakes on the sensor's INT
with power saving on, what the timer's tick found with it off, a single
sample after a stall. The published beats, their flags and the VF and AF
episodes are the same however a recording is split into feed() calls (the
asystole alarm is judged at each drain, so its time is the drain's).
207 has ventricular flutter coming and going (the rhythm analysis's
VF path and its held-back beats), 203 multiform PVCs and AF (the QRS
detector's per-peak code and the P-wave and width templates)."""
import random

import pytest

from tools.bench import detectors, records
from tools.paths import data_dir

MITDB = data_dir() / "mitdb"


@pytest.mark.parametrize("record, first, last", [("207", 0, 110000), ("207", 540000, 600000),
                                                 ("203", 0, 60000)])
def test_how_the_samples_are_split_into_feed_calls_changes_no_output(record, first, last):
    if not (MITDB / (record + ".hea")).exists():
        pytest.skip("shared recordings not found at %s" % data_dir())
    x, fs = records.wfdb_signal(MITDB, record, 0)
    x = x[first:last]
    rng = random.Random(20)
    ragged = [rng.randint(1, 40) for _ in range(997)]  # drains of any size, as stalls make them
    base = detectors.run_ecg(x, fs, chunks=[32])  # feed() calls of these sizes, in turn
    assert len(base["beats"]) > 50  # beats were found (not vacuous)
    assert {e[2] for e in _rhythms(base)} == ({"VF"} if record == "207" else {"AFIB"})
    for sizes in ([1], [17], [97], ragged):
        out = detectors.run_ecg(x, fs, chunks=sizes)
        for key in ("beats", "flags"):
            assert out[key] == base[key], (record, sizes[:3], key)
        assert _rhythms(out) == _rhythms(base), (record, sizes[:3])


def _rhythms(out):
    return [e for e in out["episodes"] if e[2] in ("VF", "AFIB")]
