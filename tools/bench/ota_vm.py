# MicroPython script (wasm / unix VM): OTA costs on the node. RSA-3072-PSS
# verification (pow(s, 65537, n) + MGF1 + SHA-256) and SHA-256 throughput,
# timed with the VM's real clock after a warm-up; then the power-loss sweep
# of host_tests/device/test_ota_powerloss.py (its crash points). DATA holds
# stage0.py and the test modules (the bench copies them in).
import gc
import hashlib
import json
import sys

sys.path.append(DATA)
import otafixture as fx
import rsapss

VERIFIES = 60
msg = b"vitalnode bench"
digest = hashlib.sha256(msg).digest()
sig = fx.sign(msg)
for _ in range(10):
    assert rsapss.verify(fx.N, sig, digest)
t0 = time.ticks_ms()
for _ in range(VERIFIES):
    rsapss.verify(fx.N, sig, digest)
verify_ms = time.ticks_diff(time.ticks_ms(), t0) / VERIFIES

block = bytes(4096)
h = hashlib.sha256()
for _ in range(32):
    h.update(block)
t0 = time.ticks_ms()
for _ in range(512):  # 2 MiB
    h.update(block)
sha_ms = time.ticks_diff(time.ticks_ms(), t0)

import test_ota_powerloss as plt

gc.collect()
points = fx.powerloss_sweep(plt._setup, plt._flow, plt._check)
print("BENCH " + json.dumps({"verify_ms": verify_ms, "sha_kib_s": 2048 * 1000 / max(sha_ms, 1),
                             "crash_points": points}))
