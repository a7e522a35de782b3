"""`make test`: the four layers, each ending in `<layer>: N passed, N failed`.

1. compile  - mpy-cross -march=xtensawin + ESP32 rules over the device tree,
              ruff over the tree, pyright over the device code (--lint)
2. cpython  - pytest over host_tests/ (device tests with shims, host tests),
              on several pytest-xdist workers, a test file per worker
3. unix     - device tests on MicroPython 1.27.0, 32-bit unix port (the
              chip's own version and object sizes), heap capped
4. frozen   - the same on the build with the firmware frozen in by manifest.py

compile runs first (about 10 s); then the CPython layer and the two VM layers
(unix, then frozen) run side by side: most of the CPython layer's time is
spent waiting on brokers, emulated boards and subprocesses, so the VMs use
the cores it leaves idle. Each layer's lines are printed as they come,
prefixed with its name, and a line every 30 s says what is still running.
Every layer runs even if another failed; the exit code is non-zero if any
did. VITALNODE_TEST_WORKERS=n sets the CPython layer's workers (default 4;
1: no xdist, in one process).
"""
import os
import re
import subprocess
import sys
import threading
import time

from tools.paths import ROOT

PY = sys.executable
HEARTBEAT_S = 30


def _workers():
    n = os.environ.get("VITALNODE_TEST_WORKERS", "4")
    if not n.isdigit() or int(n) < 1:
        sys.exit("make test: VITALNODE_TEST_WORKERS=%r: a whole number of workers, 1 or more" % n)
    return int(n)


def _cpython_cmd(workers):
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "host_tests"]
    if workers > 1:  # a file's tests stay together: module fixtures (a site, a ward) made once
        cmd[4:4] = ["-n", str(workers), "--dist", "loadfile"]
    return cmd


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


class _Console:
    """Lines of several layers, each whole and prefixed with its layer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def say(self, text):
        with self.lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def line(self, layer, text):
        self.say("%-8s| %s" % (layer, text.rstrip("\n")))


def _layer(console, name, cmd, results):
    console.say("==== layer %s: %s" % (name, " ".join(c.replace(str(ROOT) + "/", "")
                                                      for c in cmd[1:])))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    out = []
    for line in proc.stdout:
        console.line(name, line)
        out.append(line)
    rc = proc.wait()
    p, f, s = _counts("".join(out))
    if rc != 0 and f == 0:
        f = 1  # crashed or reported nothing: count it as a failure
    results[name] = (p, f, s, time.monotonic() - t0)


def _lane(console, layers, results):
    for name, cmd in layers:
        _layer(console, name, cmd, results)


def main():
    console = _Console()
    results = {}
    workers = _workers()
    _layer(console, "compile", [PY, "-m", "tools.compile_check", "--lint"], results)
    lanes = [[("cpython", _cpython_cmd(workers))],
             [("unix", [PY, "-m", "tools.vmtest", "--vm", "unix"]),
              ("frozen", [PY, "-m", "tools.vmtest", "--vm", "frozen"])]]
    threads = [threading.Thread(target=_lane, args=(console, lane, results), daemon=True)
               for lane in lanes]
    for t in threads:
        t.start()
    beat = time.monotonic() + HEARTBEAT_S
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(max(0.0, beat - time.monotonic()))
        if time.monotonic() >= beat:
            beat += HEARTBEAT_S
            running = [n for lane in lanes for n, _ in lane if n not in results]
            if running:
                console.say("make test: %d s, running: %s"
                            % (time.monotonic() - console.t0, ", ".join(running)))
    console.say("\n==== summary")
    tp = tf = ts = 0
    for name in ("compile", "cpython", "unix", "frozen"):
        p, f, s, dt = results[name]
        console.say("%-8s %4d passed, %d failed, %d skipped  (%.1f s)" % (name + ":", p, f, s, dt))
        tp, tf, ts = tp + p, tf + f, ts + s
    console.say("wall time: %.0f s" % (time.monotonic() - console.t0))
    console.say("total: %d passed, %d failed, %d skipped" % (tp, tf, ts))
    return 1 if tf else 0


if __name__ == "__main__":
    sys.exit(main())
