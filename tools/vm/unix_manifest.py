# The frozen 32-bit unix build (tools/mpbuild.py "frozen"): VitalNode's
# manifest.py, resolved by MicroPython's own manifest tool exactly as the
# ESP32 build resolves it, minus the ESP32 port's start-up modules
# (_boot.py mounts the chip's flash; the simulator's harness does that
# here), plus the simulated chip's ROM (sim_manifest.py). Nothing else is
# frozen: what the node imports is what the chip's firmware built from
# manifest.py contains.
include("../../manifest.py", port_modules=False)
include("sim_manifest.py")
