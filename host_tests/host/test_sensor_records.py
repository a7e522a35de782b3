"""One simulated hour of a MAX86150 at 200 sps fed by MIT-BIH record 100
(ECG) and BIDMC record 01 (pleth): the sampler delivers every sample, and
the decoded ECG and PPG equal the source records sample for sample after
the chip's resampling and LSB scaling - recomputed here from the records
with wfdb/numpy, independently of the simulator's streaming code."""
import gzip
from fractions import Fraction

import numpy as np
import pytest
import wfdb

from tools.paths import data_dir

HOUR_S = 3600
RATE = 200


def _resample(x, src_rate, out_rate, count):
    """The documented playback: x looped, integer linear interpolation."""
    k = np.arange(count, dtype=np.int64)
    i, r = np.divmod(k * src_rate, out_rate)
    x0 = x[i % len(x)]
    x1 = x[(i + 1) % len(x)]
    return x0 + ((x1 - x0) * r) // out_rate


def _pleth_1024(path):
    with gzip.open(path, "rt") as f:
        next(f)
        vals = [Fraction(line.split(",")[2].strip()) for line in f if line.strip()]
    return np.array([int(v * 1024) for v in vals], dtype=np.int64)  # floor: values >= 0


@pytest.fixture()
def node():
    d = data_dir()
    if not (d / "mitdb" / "100.dat").exists():
        pytest.skip("no ../shared/data")
    import machine
    import simboard
    import simmax
    import waveforms
    from max86150 import MAX86150

    from firmware.sampler import Sampler
    simboard.new_board()
    pleth = str(d / "bidmc" / "bidmc_01_Signals.csv.gz")
    chip = simmax.attach(simmax.SimMAX86150(
        int_pin=simmax.INT, ecg=waveforms.Mitdb(str(d / "mitdb" / "100"), 0),
        pleth=waveforms.BidmcPleth(pleth)))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=RATE, ecg_rate=RATE, led_ir_ma=30.0, led_red_ma=30.0)
    smp = Sampler(s, int_pin=machine.Pin(simmax.INT, machine.Pin.IN, machine.Pin.PULL_UP))
    return chip, s, smp


def test_one_hour_at_200_sps_loses_nothing_and_equals_the_records(node):
    import time
    chip, s, smp = node
    got = {"ecg": [], "ir": [], "red": []}
    stamps = []
    pos = 0
    end = time.ticks_add(time.ticks_ms(), HOUR_S * 1000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if smp.due():
            smp.service()
        time.sleep_ms(smp.SLEEP_MS)
        head = smp.times.head
        if head - pos >= 512:  # drain like a consumer (the ring holds 1024)
            for name, out in got.items():
                r = smp.rings[name]
                out.extend(r.get(i) for i in range(pos, head))
            stamps.extend(smp.times.get(i) for i in range(pos, head))
            pos = head
    n = len(stamps)
    assert n >= HOUR_S * RATE - 512 - 32
    assert smp.lost == 0 and smp.lost_estimated == 0 and smp.errors == 0 and chip.dropped == 0
    assert smp.led_changes == 0 and smp.swap_test == "ok"  # so the LED currents stayed put
    assert set(np.diff(np.array(stamps, dtype=np.int64)) % (1 << 30)) == {5000}

    rec = wfdb.rdrecord(str(data_dir() / "mitdb" / "100"), physical=False, channels=[0])
    adu = rec.d_signal[:, 0].astype(np.int64)
    uv = (adu - rec.baseline[0]) * 1000 // int(rec.adc_gain[0])
    uv_200 = _resample(uv, 360, RATE, n)
    ecg = np.clip((uv_200 * 95 * 8 * 100) // 12247, -131072, 131071)  # LSB 12.247 uV / (9.5 x 8)
    assert np.array_equal(np.array(got["ecg"]), ecg)

    p = _resample(_pleth_1024(data_dir() / "bidmc" / "bidmc_01_Signals.csv.gz"), 125, RATE, n)
    for name, coupling, pi in (("ir", 250, 2000), ("red", 150, 1040)):  # SpO2 97: R = 0.52
        led_ua = 150 * 200  # code 150 = 30 mA
        dc = (led_ua * coupling // 1000 * 512) >> 4  # 16384 nA range: 512/16 counts per nA
        ac = (dc >> 3) * pi // 12500
        want = np.clip(dc - (ac * p) // 1024, 0, (1 << 19) - 1)
        assert np.array_equal(np.array(got[name]), want), name
