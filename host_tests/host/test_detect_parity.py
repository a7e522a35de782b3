"""The detectors are bit-exact across interpreters: a full MIT-BIH record
and a full BIDMC record give the same beats, pulses and per-beat SpO2 on
CPython, the 32-bit wasm VM and the unix VM (integer-only code; a float or
a big-int slip would show here first)."""
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
    if not (MITDB / "208.hea").exists() or not BIDMC.exists():
        pytest.skip("shared recordings not found at %s" % data_dir())
    d = tmp_path_factory.mktemp("parity")
    ecg, _ = records.wfdb_signal(MITDB, "208", 0)  # PVCs, couplets: search-back runs
    pleth, _ = records.bidmc_pleth(BIDMC, "bidmc_01")
    (d / "ecg.bin").write_bytes(ecg.tobytes())
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
    beats, _, searchbacks = ref["qrs"]
    # the outputs are meaningful, not merely equal: scored against the record
    ann, vf = records.wfdb_reference(MITDB, "208")
    tp, fn, fp = scoring.score_record(ann, beats, 360, vf)
    assert tp / (tp + fn) > 0.99 and tp / (tp + fp) > 0.99, (tp, fn, fp)
    assert searchbacks > 0
    pulses = ref["ppg"][0]
    assert 550 < len(pulses) < 900  # 8 min at 70-110 bpm
    spo2 = ref["spo2"][0::2]
    assert sum(1 for v in spo2 if abs(v - 970) <= 20) > 0.8 * len(spo2)
    for vm, heap in (("wasm", None), ("unix", "24M")):
        got = run_vm(vm, SCRIPT, heap=heap or "1M", data=inputs)
        for key in ("qrs", "ppg", "spo2"):
            assert got[key] == ref[key], (vm, key)
