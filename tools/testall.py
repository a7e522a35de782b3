"""`make test`: the four layers, each ending in `<layer>: N passed, N failed`.

1. compile  - mpy-cross -march=xtensawin + ESP32 rules over the device tree
2. cpython  - pytest over host_tests/ (device tests with shims, host tests)
3. unix     - device tests on MicroPython 1.27.0, 32-bit unix port (the
              chip's own version and object sizes), heap capped
4. frozen   - the same on the build with the firmware frozen in by manifest.py
Every layer runs even if an earlier one failed; the exit code is non-zero if
any did.
"""
import re
import subprocess
import sys
import time

from tools.paths import ROOT

PY = sys.executable
LAYERS = [
    ("compile", [PY, "-m", "tools.compile_check"]),
    ("cpython", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "host_tests"]),
    ("unix", [PY, "-m", "tools.vmtest", "--vm", "unix"]),
    ("frozen", [PY, "-m", "tools.vmtest", "--vm", "frozen"]),
]


def _counts(text):
    p = f = s = 0
    for line in text.splitlines()[::-1]:
        if re.search(r"\d+ (passed|failed)", line):
            for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)", line):
                if word == "passed":
                    p = int(n)
                elif word in ("failed", "error"):
                    f += int(n)
                else:
                    s = int(n)
            break
    return p, f, s


def main():
    results = []
    for name, cmd in LAYERS:
        print("\n==== layer %s: %s" % (name, " ".join(c.replace(str(ROOT) + "/", "") for c in cmd[1:])),
              flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        out = []
        for line in proc.stdout:
            sys.stdout.write(line)
            out.append(line)
        rc = proc.wait()
        p, f, s = _counts("".join(out))
        if rc != 0 and f == 0:
            f = 1  # crashed or reported nothing: count it as a failure
        results.append((name, p, f, s, time.monotonic() - t0))
    print("\n==== summary")
    tp = tf = ts = 0
    for name, p, f, s, dt in results:
        print("%-8s %4d passed, %d failed, %d skipped  (%.1f s)" % (name + ":", p, f, s, dt))
        tp, tf, ts = tp + p, tf + f, ts + s
    print("total: %d passed, %d failed, %d skipped" % (tp, tf, ts))
    return 1 if tf else 0


if __name__ == "__main__":
    sys.exit(main())
