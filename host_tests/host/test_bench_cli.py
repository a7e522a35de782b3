"""The benchmark commands other tools call: `python -m tools.bench qrs|ppg`
write OUT/<record>.txt (one sample index per line) and print their scoring;
the EC57 matcher counts by hand-checked rules."""
import subprocess
import sys

import pytest

from tools.bench import scoring
from tools.paths import ROOT, data_dir


def test_ec57_matching_is_one_to_one_within_the_window():
    ref = [100, 400, 700, 1000]
    # 100: hit; 400: two candidates, the nearer one matches, the other is
    # false; 700: missed (detection 60 samples away with a 54-sample window);
    # 1000: hit at the edge
    det = [102, 380, 398, 760, 1054]
    assert scoring.match(ref, det, 54) == (3, 1, 2)
    assert scoring.match([], [5], 54) == (0, 0, 1)
    assert scoring.match([5], [], 54) == (0, 1, 0)
    # VF spans are left out of both sides unless strict
    assert scoring.score_record([100, 500], [100, 300, 310], 360, [(250, 350)]) == (1, 1, 0)
    assert scoring.score_record([100, 500], [100, 300, 310], 360, [(250, 350)], strict=True) == (1, 1, 2)


def test_hr_error_windows_use_the_median_interval():
    fs = 100
    peaks = list(range(0, 20 * fs, fs))  # 60 bpm for 20 s
    errs = scoring.hr_errors(peaks, fs, [62.0] * 20, 20 * fs)
    assert len(errs) == 7 and all(abs(e - 2.0) < 1e-9 for e in errs)  # windows at 0, 2 .. 12 s


def _bench(*args):
    r = subprocess.run([sys.executable, "-m", "tools.bench", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_qrs_command_writes_detections_and_scores_them(tmp_path):
    db = data_dir() / "mitdb"
    if not (db / "100.hea").exists():
        pytest.skip("MIT-BIH not found at %s" % db)
    out = _bench("qrs", "--db", str(db), "--out", str(tmp_path), "--records", "100")
    lines = (tmp_path / "100.txt").read_text().split()
    assert 2200 < len(lines) < 2300 and all(v.isdigit() for v in lines)  # 2273 beats in 100
    assert [int(v) for v in lines] == sorted(int(v) for v in lines)
    assert "DS2   1 records: Se" in out and "not updated" in out


def test_ppg_command_writes_pulses_and_prints_the_hr_error(tmp_path):
    db = data_dir() / "bidmc"
    if not db.exists():
        pytest.skip("BIDMC not found at %s" % db)
    out = _bench("ppg", "--db", str(db), "--out", str(tmp_path), "--records", "bidmc_01")
    lines = (tmp_path / "bidmc_01.txt").read_text().split()
    assert 600 < len(lines) < 900 and all(v.isdigit() for v in lines)  # 8 min near 94 bpm
    assert "from the beat lists" in out and "smoothed pulse rate" in out
