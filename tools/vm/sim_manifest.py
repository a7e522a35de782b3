# The simulated chip's ROM, frozen into both 32-bit builds (tools/mpbuild.py):
# the shims that stand in for the ESP32 port's C modules (machine, esp32,
# network, time), the simulated board, flash, clock, sensor and network
# behind them, and the simulator's harness (simnode = tools/vm/node.py).
# On the chip those are C code in ROM: they cost the node no heap, and their
# names are ROM qstrs. Frozen here they are the same - so a node's heap
# figures are the node's own, and no interned name of the harness makes the
# node's qstr pools look smaller than the chip's.
# Not frozen: micropython.py and simlfs.py (CPython only), flashfs.py (the
# WebAssembly emulator's).
for _name in ("esp32", "espimage", "machine", "network", "time", "powerstate", "simbattery", "simboard",
              "simflash", "simmax", "simnet", "timing", "vclock", "waveforms"):
    module(_name + ".py", base_path="../shims")
module("node.py", base_path=".")
