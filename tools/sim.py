"""`make sim`: the real boot.py -> main.py on a simulated node.

    python -m tools.sim [--runtime micropython|cpython] [--duration S] [--heap 128K]

micropython (default): the MicroPython unix port with a hard heap cap, the
closest runtime to the chip we can run here. cpython: the same firmware
under CPython with the shims, for debugging with CPython tools. Prints what
the firmware prints, then a summary, and writes build/sim/summary.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from tools.paths import BUILD, ROOT, SHIMS, venv_tool
from tools.vm.esp32_modules import write_hide_dir


def run_micropython(duration, heap):
    return run_micropython_node(str(ROOT), duration, heap)


def run_micropython_node(root, duration, heap):
    """boot.py/main.py from `root` on the unix port; returns the summary."""
    hide = write_hide_dir(BUILD / "vm" / "hide")
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(hide), str(SHIMS), root + "/lib", root, ".frozen"])
    cmd = [venv_tool("micropython"), "-X", "heapsize=" + heap,
           str(ROOT / "tools" / "vm" / "node.py"), root, str(duration)]
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


def run_cpython(duration):
    from tools import hostshims
    hostshims.install()
    from tools.vm import node
    return node.run(str(ROOT), duration)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", choices=["micropython", "cpython"], default="micropython")
    ap.add_argument("--duration", type=int, default=60, help="simulated seconds (default 60)")
    ap.add_argument("--heap", default="128K", help="MicroPython heap cap (default 128K)")
    ap.add_argument("--out", default=str(BUILD / "sim" / "summary.json"))
    a = ap.parse_args(argv)
    print("sim: %d simulated seconds on %s" % (a.duration, a.runtime), flush=True)
    t0 = time.monotonic()
    s = run_micropython(a.duration, a.heap) if a.runtime == "micropython" else run_cpython(a.duration)
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
