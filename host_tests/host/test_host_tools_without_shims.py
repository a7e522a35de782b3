"""The production host tools (gateway, broker set-up, provisioning, OTA
build/verify/serve, the ward) load the device code they share with the node
(frames, config, the OTA manifest) without the test shims: no simulated
`machine`, `esp32`, `network` or virtual clock becomes importable, and
CPython's `time` keeps its own names (tools/devicecode.py)."""
import json
import subprocess
import sys

from tools.paths import ROOT

# run in a fresh interpreter: pytest itself has the shims loaded
_PROBE = r"""
import importlib.util, json, sys, time
from pathlib import Path
out = Path(sys.argv[1])
import tools.ward, tools.gateway.__main__, tools.provision.__main__, tools.ota.__main__
import tools.flash, tools.deploy, tools.wardapp.__main__
from tools import broker, paths
from tools.gateway import core
from tools.ota import bundle, server
from tools.provision import keys, site
keys.check_device_id("240ac4000001")                      # firmware/config's rule
site._firmware_config().check_device_id("240ac4000002")
assert core.FRAME_MAX == broker.FRAME_MAX > 23   # firmware/frames, in both
k = bundle.keygen(out / "key")
man = bundle.build(out / "b", k[0], "9.0.0", 3, log=lambda s: None)   # otamanifest, deploy.stage
bundle.verify(out / "b", k[1], log=lambda s: None)
hw = man["hw"]
from firmware.frames import HEAD_LEN                        # device code imports
sim = ("machine", "esp32", "network", "vclock", "simboard", "simflash", "simnet", "timing", "powerstate")
print(json.dumps({
    "loaded": [m for m in sim if m in sys.modules],
    "importable": [m for m in sim if importlib.util.find_spec(m) is not None],
    "shims_on_path": str(paths.SHIMS) in sys.path,
    "time_names": [n for n in ("ticks_ms", "ticks_diff", "sleep_ms", "sleep_us") if hasattr(time, n)],
    "micropython": sorted(n for n in vars(sys.modules["micropython"]) if not n.startswith("_")),
    "hw": hw, "frame_head": HEAD_LEN}))
"""


def test_production_tools_load_device_code_without_the_shims(tmp_path):
    r = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["loaded"] == [] and got["importable"] == [], got
    assert not got["shims_on_path"] and got["time_names"] == [], got
    assert got["micropython"] == ["VITALNODE_MINIMAL", "const"]
    assert got["hw"] == "vitalnode-esp32" and got["frame_head"] == 23


def test_the_shims_replace_the_minimal_micropython_when_a_test_loads_them():
    probe = ("from tools import devicecode, hostshims\ndevicecode.install()\n"
             "from firmware import frames\nhostshims.install()\nimport micropython, machine\n"
             "print(hasattr(micropython, 'heap_lock'), hasattr(micropython, 'VITALNODE_MINIMAL'))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]
