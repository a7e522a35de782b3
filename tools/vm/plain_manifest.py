# The plain 32-bit unix build (tools/mpbuild.py "plain"): the stock unix
# variant's frozen modules, plus the simulated chip's ROM (sim_manifest.py).
include("$(PORT_DIR)/variants/standard/manifest.py")
include("sim_manifest.py")
