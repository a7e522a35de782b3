"""Benchmarks: `make bench` -> build/bench/results.json.

    .venv/bin/python -m tools.bench all          # everything below
    .venv/bin/python -m tools.bench sensor       # FIFO read cost on the VMs

results.json holds one number per named metric (flat keys, other tools
read them) and, under "_about", each metric's unit, the command that
produced it and what exactly was measured. A run updates only the keys it
measured, so partial runs keep earlier figures.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from tools.paths import BUILD, LIB, ROOT, SHIMS, venv_tool

RESULTS = BUILD / "bench" / "results.json"


def run_vm(vm, script, heap="1M"):
    """Run a MicroPython script on a VM; returns its BENCH {...} dict. The
    script starts with the builtin `time` (real clock), then the device
    tree and the shims on sys.path."""
    if vm == "wasm":
        cmd = ["node", str(ROOT / "tools/vm/run_script.mjs"), str(ROOT), str(script)]
        env = dict(os.environ, NODE_PATH=str(ROOT / "node_modules"))
    else:
        prelude = ("import time\nimport sys\nsys.path.extend(%r)\n"
                   % [str(LIB), str(SHIMS), str(ROOT)])
        tmp = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
        tmp.write(prelude + open(script).read())
        tmp.close()
        cmd = [str(venv_tool("micropython")), "-X", "heapsize=" + heap, tmp.name]
        env = dict(os.environ, MICROPYPATH=".frozen")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise SystemExit("%s bench %s failed:\n%s%s" % (vm, script, r.stdout, r.stderr))


def bench_sensor():
    script = ROOT / "tools/bench/sensor_vm.py"
    cmd = ".venv/bin/python -m tools.bench sensor"
    what = ("MAX86150 driver read_fifo() of 32 samples x 3 channels (IR, red, ECG) with the FIFO "
            "full; I2C stand-in returns at once, so this is the driver's Python work; mean of 400 reads")
    out = {}
    w = run_vm("wasm", script)
    u = run_vm("unix", script)
    out["sensor.fifo_read_us_wasm"] = (round(w["fifo_read_us"], 1), "us", what + ", 32-bit wasm VM under Node")
    out["sensor.fifo_read_us_unix"] = (round(u["fifo_read_us"], 1), "us", what + ", unix port")
    heap = math.ceil(max(w["fifo_read_heap_bytes"], u["fifo_read_heap_bytes"]))
    out["sensor.fifo_read_heap_bytes"] = (heap, "bytes", "heap allocated per read_fifo(), "
                                          "gc.mem_alloc() delta over 100 reads, worst of both VMs")
    return {k: v + (cmd,) for k, v in out.items()}


BENCHES = {"sensor": bench_sensor}


def write(results):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    about = data.setdefault("_about", {})
    for key, (value, unit, what, cmd) in results.items():
        data[key] = value
        about[key] = {"unit": unit, "what": what, "command": cmd,
                      "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=sorted(BENCHES) + ["all"])
    a = ap.parse_args(argv)
    names = sorted(BENCHES) if a.what == "all" else [a.what]
    for name in names:
        res = BENCHES[name]()
        write(res)
        for k, (v, unit, _, _) in sorted(res.items()):
            print("%-34s %12s %s" % (k, v, unit))
    print("wrote", RESULTS.relative_to(ROOT))


if __name__ == "__main__":
    sys.exit(main())
