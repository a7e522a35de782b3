# MicroPython script (wasm / unix VM): the whole detection pipeline per
# second of signal - ECG QRS and rhythm analysis (lib/rhythm: monitor rate,
# VF, AF, beat publishing) at 360 sps (MIT-BIH 100, channel 0) plus IR/red
# pulse detection and SpO2 at 100 sps (BIDMC 01 pleth turned into photodiode
# counts) plus the alert update - fed in FIFO-sized chunks, as the node does.
# DATA (set by the runner) holds ecg360.bin / ir100.bin / red100.bin, int32.
import gc
import json

from alerts import Alerts
from ppg import PulseDetector
from qrs import QRSDetector
from rhythm import Rhythm
from spo2 import SpO2


def load(name):
    with open(DATA + "/" + name, "rb") as f:
        b = f.read()
    from array import array
    return array("i", b)


ecg = load("ecg360.bin")
ir = load("ir100.bin")
red = load("red100.bin")
SECONDS = len(ecg) // 360


def run(q, p, ox, al, sec0, sec1):
    # one loop turn = 0.1 s: 36 ECG samples, 10 PPG samples, one alert update
    ms = 0
    for t in range(sec0 * 10, sec1 * 10):
        q.feed(ecg, -1, t * 36, t * 36 + 36)  # (a Rhythm: it feeds its QRS detector)
        p.feed(ir, -1, t * 10, t * 10 + 10)
        ox.feed(red, -1, t * 10, t * 10 + 10)
        while ox.k_seen < p.count:
            ox.beat(ox.k_seen)
            ox.k_seen += 1
        ms += 100
        al.update(ms, q.hr_x10, ox.spo2_x10, 100, False, False, False, q.state)


def build():
    q = Rhythm(QRSDetector(360, 60))
    p = PulseDetector(100, invert=True)
    ox = SpO2(p)
    ox.k_seen = 0
    return q, p, ox, Alerts()


q, p, ox, al = build()
run(q, p, ox, al, 0, 10)  # warm up: learning, V8 JIT
a0 = a1 = 0  # (globals made now: making one inside the window grows the module's dict)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
run(q, p, ox, al, 10, 100)
a1 = gc.mem_alloc()
gc.enable()
heap = (a1 - a0) / (90 * (360 + 200))
t0 = time.ticks_ms()
run(q, p, ox, al, 100, SECONDS)
ms = time.ticks_diff(time.ticks_ms(), t0)
print("BENCH " + json.dumps({"ms_per_signal_second": ms / (SECONDS - 100), "heap_bytes_per_sample": heap,
                             "beats": q.count, "pulses": p.count, "spo2_x10": ox.spo2_x10,
                             "seconds": SECONDS - 100}))
