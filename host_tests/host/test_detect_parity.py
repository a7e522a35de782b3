"""The detectors are bit-exact across interpreters: a full MIT-BIH record
(207: PVCs, bundle branch blocks, ventricular flutter; 201: atrial
fibrillation coming and going) through the QRS detector and the rhythm
analysis, and a full BIDMC record, give the same
published beats, flags, rates, VF/AF state changes, pulses and per-beat
SpO2 on CPython, the 32-bit wasm VM and the unix VM (integer-only code; a
float or a big-int slip would show here first)."""
import contextlib
import io
import json
from array import array
from pathlib import Path

import pytest

from tools.bench import records, scoring
from tools.bench.__main__ import run_vm
from tools.paths import data_dir

SCRIPT = Path(__file__).with_name("parity_vm.py")
MITDB = data_dir() / "mitdb"
BIDMC = data_dir() / "bidmc"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    if not (MITDB / "207.hea").exists() or not BIDMC.exists():
        pytest.skip("shared recordings not found at %s" % data_dir())
    d = tmp_path_factory.mktemp("parity")
    ecg, _ = records.wfdb_signal(MITDB, "207", 0)  # PVCs, BBB, flutter: every rhythm path
    pleth, _ = records.bidmc_pleth(BIDMC, "bidmc_01")
    (d / "ecg.bin").write_bytes(ecg.tobytes())
    ecg, _ = records.wfdb_signal(MITDB, "201", 0)  # AF episodes: the AF path's every feature
    (d / "ecg_af.bin").write_bytes(ecg.tobytes())
    (d / "pleth.bin").write_bytes(pleth.tobytes())
    # the pleth as photodiode counts: IR PI 2 %, red for R = 0.52
    (d / "ir.bin").write_bytes(array("i", (90000 - (v * 1800) // 32768 for v in pleth)).tobytes())
    (d / "red.bin").write_bytes(array("i", (60000 - (v * 624) // 32768 for v in pleth)).tobytes())
    return d


def _cpython(data):
    from tools import hostshims
    hostshims.install()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), {"DATA": str(data), "__name__": "parity"})
    line = [ln for ln in buf.getvalue().splitlines() if ln.startswith("BENCH ")][0]
    return json.loads(line[6:])


def test_same_outputs_on_cpython_wasm_and_unix(inputs):
    ref = _cpython(inputs)
    out, states, searchbacks, dropped, _ = ref["qrs"]
    beats = out[0::3]
    # the outputs are meaningful, not merely equal: scored against the record
    ann, vf = records.wfdb_reference(MITDB, "207")
    tp, fn, fp = scoring.score_record(ann, beats, 360, vf)
    assert tp / (tp + fn) > 0.99 and tp / (tp + fp) > 0.99, (tp, fn, fp)
    tp, fn, fp = scoring.score_record(ann, beats, 360, vf, strict=True)
    assert fp < 60, fp  # flutter waves are not published (347 were before lib/rhythm)
    assert searchbacks > 0 and dropped > 200
    assert 6 <= sum(1 for st in states[0::2] if st & 1) and len(states) >= 12  # VF on and off
    states = ref["af"][1][0::2]  # 201: AF raised and ended (bit 2), more than once
    assert sum(1 for a, b in zip([0] + states, states) if b & 2 and not a & 2) >= 2
    assert sum(1 for a, b in zip([0] + states, states) if a & 2 and not b & 2) >= 2
    pulses = ref["ppg"][0]
    assert 550 < len(pulses) < 900  # 8 min at 70-110 bpm
    spo2 = ref["spo2"][0::2]
    assert sum(1 for v in spo2 if abs(v - 970) <= 20) > 0.8 * len(spo2)
    for vm, heap in (("wasm", None), ("unix", "24M")):
        got = run_vm(vm, SCRIPT, heap=heap or "1M", data=inputs)
        for key in ("qrs", "af", "ppg", "spo2"):
            assert got[key] == ref[key], (vm, key)
