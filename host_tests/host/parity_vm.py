# Runs unchanged on CPython (host_tests/host/test_detect_parity.py execs it)
# and on both MicroPython VMs (tools.bench.run_vm): the detectors over a
# full MIT-BIH record and a full BIDMC record, every output printed.
# DATA holds ecg.bin and ecg_af.bin (MIT-BIH, 360 sps) and ir.bin / red.bin /
# pleth.bin (BIDMC, 125 sps), int32 little-endian. The ECG goes through lib/rhythm
# (published beats, their flags, the rate at each, VF/AF state changes).
import json
from array import array

from ppg import PulseDetector
from qrs import QRSDetector
from rhythm import Rhythm
from spo2 import SpO2


def load(name):
    with open(DATA + "/" + name, "rb") as f:
        return array("i", f.read())


def collect(det, x, index_of, chunk):
    out = []
    for s in range(0, len(x), chunk):
        det.feed(x, -1, s, min(len(x), s + chunk))
        while len(out) < det.count:
            out.append(index_of(len(out)))
    return out


def rhythm_out(name):
    rh = Rhythm(QRSDetector(360, 60))
    x = load(name)
    beats = []
    states = []
    state = 0
    for s in range(0, len(x), 32):
        rh.feed(x, -1, s, min(len(x), s + 32))
        while len(beats) < 3 * rh.count:
            i = len(beats) // 3
            beats.append(rh.beat(i))
            beats.append(rh.flags(i))
            beats.append(rh.hr_x10)
        if rh.state != state:
            state = rh.state
            states.append(state)
            states.append(s)
    return beats, states, rh.qrs.searchbacks, rh.dropped, (rh.vf_start, rh.vf_end, rh.af_start, rh.af_end)


def ppg_pulses():
    det = PulseDetector(125)
    return collect(det, load("pleth.bin"), det.peak, 16), det.hr_x10, det.sqi


def spo2_per_beat():
    ir = load("ir.bin")
    red = load("red.bin")
    det = PulseDetector(125, invert=True)
    ox = SpO2(det)
    out = []
    k = 0
    for s in range(0, len(ir), 16):
        e = min(len(ir), s + 16)
        det.feed(ir, -1, s, e)
        ox.feed(red, -1, s, e)
        while k < det.count:
            ox.beat(k)
            out.append(ox.spo2_x10)
            out.append(det.pi_x100)
            k += 1
    return out


print("BENCH " + json.dumps({"qrs": rhythm_out("ecg.bin"), "af": rhythm_out("ecg_af.bin"), "ppg": ppg_pulses(),
                            "spo2": spo2_per_beat()}))
