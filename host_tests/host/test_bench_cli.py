"""The benchmark commands other tools call: `python -m tools.bench
qrs|rhythm|ppg` write OUT/<record>.txt (qrs, ppg: one sample index per line;
rhythm: `start_sample end_sample LABEL`) and print their scoring, for any
WFDB record name and channel count; the scorers count by hand-checked rules;
the published AF detector the rhythm bench compares with follows its paper;
the noise stress set has the SNR it claims, measured as NSTDB defines it."""
import subprocess
import sys

import pytest

from tools.bench import afref, scoring
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


def test_beat_hr_windows_use_the_mean_interval_of_the_beat_list():
    fs = 100
    # 60 bpm, one beat missed at 5 s: a window holding the gap reads 60 * 7 / 8.0 s
    peaks = [t * fs for t in range(20) if t != 5]
    errs = scoring.beat_hr_errors(peaks, fs, [60.0] * 20, 20 * fs)
    assert len(errs) == 7
    assert abs(errs[0] - (60.0 - 60.0 * 6 / 7)) < 1e-9  # 0..8 s: beats 0..7 without 5, 6 intervals over 7 s
    assert errs[-1] == 0.0  # 12..20 s: no gap


def _lcg(n, lo, hi, seed=1):
    out = []
    for _ in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(lo + seed % (hi - lo))
    return out


def test_dash_2009_calls_random_rrs_af_and_regular_or_patterned_ones_not():
    # features by hand: 1000 ms +- alternating 100 ms: every inner RR a turning point
    alt = [900 if i % 2 else 1100 for i in range(128)]
    rmssd, she, tpr = afref.dash_features(alt)
    assert tpr == 1.0 and abs(rmssd - 0.2) < 1e-9 and she < 0.3  # two bins
    rmssd, she, tpr = afref.dash_features(_lcg(128, 400, 1200))
    assert rmssd > 0.1 and she > 0.9 and 0.54 <= tpr <= 0.77

    def episodes(rrs):
        beats = [0]
        for rr in rrs:
            beats.append(beats[-1] + rr)
        return beats, afref.dash_af(beats)

    beats, eps = episodes([800] * 150 + _lcg(400, 400, 1200) + [800] * 150)
    assert len(eps) == 1
    a, b = eps[0]
    assert beats[150] <= a < beats[150 + 64] and beats[550 - 64] < b <= beats[550]  # middle of each window
    assert episodes([800] * 600)[1] == []
    assert episodes([900 if i % 2 else 1100 for i in range(600)])[1] == []  # bigeminy: TPR 1


def test_rhythm_scoring_weights_by_duration_and_times_alarms():
    # AF reference 100..300 of a 1000-sample record, detected 150..350
    assert scoring.duration_scores([(100, 300)], [(150, 350)], 1000) == (150, 50, 50, 750)
    assert scoring.duration_scores([], [(0, 10)], 100) == (0, 0, 10, 90)
    # episodes at 1000 and 5000; alarms at 1200 (delay 200), one on since 4000
    assert scoring.alarm_delays([(1000, 2000), (5000, 6000), (8000, 9000)],
                                [(1200, 1500), (4000, 5500)], 3600) == [200, 0, None]
    # an alarm outside every episode is false
    assert scoring.false_alarms([(1000, 2000)], [(1500, 1600), (3000, 3100)]) == 1


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


def _short_record(tmp_path, name, seconds=60, channels=2):
    """A WFDB record named `name` (any name: NSTDB's are like 118e06) made
    of the first seconds of MIT-BIH 100, with its reference beats."""
    import numpy as np
    import wfdb
    src = data_dir() / "mitdb"
    if not (src / "100.hea").exists():
        pytest.skip("MIT-BIH not found at %s" % src)
    n = seconds * 360
    r = wfdb.rdrecord(str(src / "100"), sampto=n, physical=False)
    a = wfdb.rdann(str(src / "100"), "atr", sampto=n)
    d = r.d_signal[:, :channels].astype(np.int16)
    wfdb.wrsamp(name, fs=360, units=["mV"] * channels, sig_name=r.sig_name[:channels], d_signal=d,
                fmt=["16"] * channels, adc_gain=[200.0] * channels, baseline=[1024] * channels,
                write_dir=str(tmp_path))
    wfdb.wrann(name, "atr", a.sample, a.symbol, aux_note=a.aux_note, write_dir=str(tmp_path))
    return len([c for c in a.symbol if c in "NLRBAaJSVrFejnE/fQ?"])


def test_qrs_takes_any_record_name_and_channel_count(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    beats = _short_record(db, "100e_6", channels=1)  # a name int() cannot read, one signal
    out = _bench("qrs", "--db", str(db), "--out", str(tmp_path / "out"))
    lines = (tmp_path / "out" / "100e_6.txt").read_text().split()
    assert abs(len(lines) - beats) <= 2
    assert "100e_6" in out and "ALL   1 records: Se" in out
    # a channel the record does not have: a named error, no traceback
    r = subprocess.run([sys.executable, "-m", "tools.bench", "qrs", "--db", str(db), "--out",
                        str(tmp_path / "out"), "--channel", "1"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "100e_6 has 1 signal(s); channel 1 does not exist" in r.stdout + r.stderr
    # a record that is not there
    r = subprocess.run([sys.executable, "-m", "tools.bench", "qrs", "--db", str(db), "--out",
                        str(tmp_path / "out"), "--records", "nope"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "no such WFDB record" in r.stdout + r.stderr


def test_rhythm_command_writes_episodes_and_scores_vf(tmp_path):
    db = data_dir() / "mitdb"
    if not (db / "207.hea").exists():
        pytest.skip("MIT-BIH not found at %s" % db)
    out = _bench("rhythm", "--db", str(db), "--out", str(tmp_path), "--records", "207")
    rows = [ln.split() for ln in (tmp_path / "207.txt").read_text().splitlines()]
    assert rows and all(len(x) == 3 and x[0].isdigit() and x[1].isdigit() and int(x[0]) <= int(x[1])
                        and x[2] in ("AFIB", "VF", "ASYS") for x in rows)
    # 207's ventricular flutter starts at 40.8 s (sample 14689) and lasts 10 s
    vf = [(int(a), int(b)) for a, b, lab in rows if lab == "VF"]
    assert any(14689 <= a <= 14689 + 3600 for a, _ in vf)
    assert "alarmed within 10 s: 6" in out and "not updated" in out


def test_the_noise_set_has_the_snr_it_claims(tmp_path):
    import numpy as np
    from tools.bench import noise
    assert [noise.record_name("118", s) for s in (24, 6, 0, -6)] == ["118e24", "118e06", "118e00", "118e_6"]
    fs = 360
    # a clean record: 300 s of 1 mV R waves (peak to peak 200 units) at 1 Hz
    n = 600 * fs
    x = np.zeros(n)
    beats = list(range(fs // 2, n - fs, fs))
    for b in beats:
        x[b - 2:b + 3] = [50, 150, 200, 150, 50]
    for snr in (12, 0):
        y = noise.noisy_record(x.tolist(), fs, "t", beats, ["N"] * len(beats), (snr,))[snr]
        added = y - x
        # NSTDB's noise measure on the added noise where the protocol turned it on
        on = added[noise.LEARN_S * fs + fs:(noise.LEARN_S + noise.ON_S) * fs - fs]
        chunks = [on[i * fs:(i + 1) * fs] for i in range(len(on) // fs)]
        rms = sorted(float(np.sqrt(np.mean((c - c.mean()) ** 2))) for c in chunks)
        k = len(rms) // 20
        n_rms = float(np.mean(rms[k:len(rms) - k]))
        got = 10 * np.log10((200.0 ** 2 / 8) / n_rms ** 2)
        assert abs(got - snr) < 1.0, (snr, got)
        assert not added[:noise.LEARN_S * fs - fs].any()  # the first 5 minutes are clean
