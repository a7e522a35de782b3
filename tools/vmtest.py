"""Run the device-logic tests on real MicroPython VMs.

    python -m tools.vmtest [--vm unix|frozen|all|wasm|unix64] [-v] [-k TEST] [FILE_OR_MODULE ...]

unix (default): MicroPython 1.27.0, the release users flash, as a 32-bit
unix port (tools.mpbuild "plain"): the chip's object sizes, real GC under a
hard heap cap, socket, ssl (mbedtls), VfsLfs2. frozen: the same build with
the firmware frozen in by our manifest.py. `all` runs both (make test).
Options for comparison, not in make test: wasm (the 1.27 WebAssembly port
under Node) and unix64 (the 64-bit PyPI wheel). Every VM hides the modules
the ESP32 firmware lacks (tools/vm/esp32_modules.py); the unix VMs start
through tools/vm/launch.py, each module in its own working folder.
A test module may set VM_HEAPSIZE = "512K" to change the heap cap
(default 1M). Ends with one line per VM: `<vm>: N passed, N failed, N skipped`.
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tools.paths import BUILD, DEVICE_TESTS, LIB, ROOT, SHIMS, STAGE0_FILES
from tools.vm import launch
from tools.vm.esp32_modules import stub_files

VM_DIR = ROOT / "tools" / "vm"
_tests_dir = DEVICE_TESTS  # --dir may point elsewhere
DEFAULT_HEAP = "1M"
TIMEOUT_S = 600


def discover(names, tests_dir):
    if not names:
        return sorted(p.stem for p in tests_dir.glob("test_*.py"))
    mods = []
    for n in names:
        stem = os.path.basename(n.split("::")[0])
        mods.append(stem[:-3] if stem.endswith(".py") else stem)
    return mods


def _tally(out, verbose):
    """Print what matters from a runner's output; return (p, f, s, seen)."""
    p = f = s = 0
    seen = set()
    show = False
    for line in out.splitlines():
        m = re.match(r"RESULT (\S+) (\d+) (\d+) (\d+)", line)
        if m:
            seen.add(m.group(1))
            p, f, s = p + int(m.group(2)), f + int(m.group(3)), s + int(m.group(4))
            show = False
            continue
        if line.startswith(("PASS ", "SKIP ")):
            show = False
            if verbose or line.startswith("SKIP"):
                print("  " + line)
            continue
        if line.startswith("FAIL "):
            show = True
        if show or verbose:
            print("  " + line)
    return p, f, s, seen


def run_wasm(mods, only, verbose):
    spec = {
        "trees": {"/proj/lib": str(LIB), "/proj/firmware": str(ROOT / "firmware"),
                  "/proj/shims": str(SHIMS), "/proj/tests": str(_tests_dir),
                  "/proj/runner": str(VM_DIR)},
        "stubs": stub_files(),
        "path": ["/hide", "/proj/shims", "/proj/tests", "/proj/runner", "/proj/lib", "/proj",
                 ".frozen"],
        "files": {"/proj/" + f: str(ROOT / f) for f in ("boot.py", "main.py") + STAGE0_FILES
                  if (ROOT / f).exists()},
        "modules": mods, "only": only, "heapsize": 8 * 1024 * 1024, "pystack": 64 * 1024,
    }
    spec_path = BUILD / "vm" / "wasm-spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run(["timeout", str(TIMEOUT_S), "node", str(VM_DIR / "wasm_run.mjs"),
                           str(spec_path)], cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    return out


def _unix_one(vm, mod, only):
    src = (_tests_dir / (mod + ".py"))
    heap = DEFAULT_HEAP
    if src.exists():
        m = re.search(r'^VM_HEAPSIZE\s*=\s*"(\w+)"', src.read_text(), re.M)
        if m:
            heap = m.group(1)
    with launch.Run(vm, heap=heap, tests=_tests_dir) as run:
        proc = run.call("runner/mprunner.py", [mod] + ([only] if only else []), timeout=TIMEOUT_S)
    return proc.stdout + proc.stderr


def run_unix(vm, mods, only, verbose):
    """Each module in a VM of its own, two at a time; a line as each ends
    (progress), the outputs joined in module order (for the tally)."""
    launch.binary(vm)  # build it once, before the workers start
    outs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {pool.submit(_unix_one, vm, m, only): m for m in mods}
        for i, job in enumerate(concurrent.futures.as_completed(jobs), 1):
            m = jobs[job]
            outs[m] = job.result()
            res = re.search(r"^RESULT \S+ (\d+) (\d+) (\d+)", outs[m], re.M)
            print("  %s: [%d/%d] %s %s" % (vm, i, len(mods), m, "%s passed, %s failed, %s skipped"
                                          % res.groups() if res else "DIED"), flush=True)
    return "\n".join(outs[m] for m in mods)


def run(vm, mods, only, verbose):
    print("== MicroPython %s: %d test modules" % (vm, len(mods)), flush=True)
    out = run_wasm(mods, only, verbose) if vm == "wasm" else run_unix(vm, mods, only, verbose)
    p, f, s, seen = _tally(out, verbose)
    missing = [m for m in mods if m not in seen]
    if missing:
        f += len(missing)
        print("  runner died before finishing: %s" % ", ".join(missing))
        tail = out.strip().splitlines()[-15:]
        print("  " + "\n  ".join(tail))
    print("%s: %d passed, %d failed, %d skipped" % (vm, p, f, s), flush=True)
    return f


def main(argv=None):
    global _tests_dir
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vm", choices=["unix", "frozen", "all", "wasm", "unix64"], default="unix")
    ap.add_argument("-k", dest="only", help="run only this test function")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--dir", default=str(DEVICE_TESTS),
                    help="directory of device test modules (default host_tests/device)")
    ap.add_argument("tests", nargs="*")
    a = ap.parse_args(argv)
    _tests_dir = Path(a.dir).resolve()
    mods = discover(a.tests, _tests_dir)
    vms = ["unix", "frozen"] if a.vm == "all" else [a.vm]
    from tools.mpbuild import BuildError
    try:
        failed = sum(run(vm, mods, a.only, a.verbose) for vm in vms)
    except BuildError as e:
        print("vmtest: %s" % e, file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
