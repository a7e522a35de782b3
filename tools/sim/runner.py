"""Running one simulated node: its flash built as `make deploy` and
provisioning would leave a board, the harness (tools/vm/node.py) on the
32-bit MicroPython 1.27 unix port under the chip's heap cap, or in this
CPython process with the shims.

A MicroPython node is a child process in its own working folder
(tools/vm/launch.py): its flash image, its spec and links to its
recordings live there under fixed short names, so nothing about the
checkout's location reaches the node's heap. Its output lines go to
`on_line` (SIM-* lines parsed by the caller); a SIM-FAULT line is answered
through `on_fault` (the broker outage is made by the host) before the node
goes on.
"""
import gzip
import json
import os
import tempfile
import threading

from tools.paths import BUILD, ROOT, data_dir
from tools.vm import launch

SIM_DEVICE_ID = "240ac4000001"  # simboard.Board's default unique_id
HARNESS_SLACK = 65536  # room for the harness's set-up garbage (filled by ballast afterwards)
CHIP_HEAP = "112K"  # the ESP32 port's GC heap design point (README "Heap")
LAYOUTS = ("deployed", "frozen")


def pleth_cache(src):
    """Decode a BIDMC PLETH column once into build/cache as int16 (the
    scaling is waveforms.BidmcPleth's, run here on CPython), so the node
    does not have to hold a 32 KB inflate window."""
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
    tmp = out.with_suffix(".tmp%d" % os.getpid())
    tmp.write_bytes(values.tobytes())
    tmp.replace(out)
    return out


def sensor_spec(chip, record, ppg, spo2):
    """The simulated sensor and its recordings (host paths; synthetic
    signals where a path is None)."""
    if chip == "none":
        return None
    d = data_dir()
    ecg = d / "mitdb" / record
    pleth = d / "bidmc" / ("bidmc_%s_Signals.csv.gz" % ppg)
    return {"chip": chip, "spo2": spo2,
            "ecg": str(ecg) if ecg.with_suffix(".dat").exists() else None,
            "pleth_i16": str(pleth_cache(pleth)) if pleth.exists() else None}


def device_tree(layout="deployed", root=None):
    """{path on the node's flash: bytes} as `make deploy` leaves a board:
    boot.py and main.py as source, firmware/ and lib/ compiled into slot a
    (tools/deploy.py), or - frozen, for a firmware built from manifest.py -
    boot.py and main.py only. root: another folder's boot.py/main.py only
    (a test's stand-in firmware)."""
    if root is not None:
        return {name: open(os.path.join(root, name), "rb").read()
                for name in ("boot.py", "main.py") if os.path.exists(os.path.join(root, name))}
    from tools.deploy import slot_tree, stage
    with tempfile.TemporaryDirectory(prefix="vitalnode-stage-") as d:  # read into memory
        tree = slot_tree(stage(os.path.join(d, "root")))
    if layout == "frozen":
        tree = {p: tree[p] for p in ("boot.py", "main.py")}
    return tree


def deploy_nvs(layout):
    """The NVS keys `make deploy` sets: slot a confirmed at this tree's
    version (tools/deploy.py), nothing on trial."""
    from tools import hostshims
    from tools.deploy import version_code
    hostshims.install()
    import stage0
    return {stage0.NS: stage0.encode({"act": 0, "pend": -1, "tries": 0, "img": 0,
                                      "ver": version_code()})}


def build_flash(path, tree, image=None):
    """The node's flash image: `tree` plus the provisioning image's files."""
    from tools import hostshims
    hostshims.install()
    import simlfs
    files = dict(tree)
    for p, text in ((image or {}).get("files") or {}).items():
        files[p] = text.encode() if isinstance(text, str) else text
    simlfs.build_image(str(path), files)


def heap_bytes(text):
    text = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("KM")) * mult


def _link_sensor(run, sensor):
    """The recordings, linked into the working folder under fixed names."""
    if not sensor:
        return None
    s = dict(sensor)
    if s.get("ecg"):
        for ext in (".dat", ".hea"):
            os.symlink(s["ecg"] + ext, run.path("ecg" + ext))
        s["ecg"] = "ecg"
    if s.get("pleth_i16"):
        os.symlink(s["pleth_i16"], run.path("pleth.i16"))
        s["pleth_i16"] = "pleth.i16"
    return s


class UnixNode:
    """One node on the 32-bit unix port, in a child process.

    tree: its flash content (device_tree()); image: provisioning (NVS and
    files); spec: the rest of node.py's spec (uid, wifi, faults, ...)."""

    def __init__(self, tree, duration, heap, spec, on_line, on_fault=None, layout="deployed",
                 image=None, vm=None, flash_from=None, flash_to=None):
        """flash_from: start from this flash image (an earlier run's, saved
        with flash_to) instead of building one from tree and image."""
        self.vm = vm or ("frozen" if layout == "frozen" else "unix")
        self.run = launch.Run(self.vm, tests=None)
        self.flash_to = flash_to
        # the harness, frozen into the 32-bit builds (the chip's ROM)
        self._script = "runner/node.py" if self.vm == "unix64" else "-m node"
        try:
            if flash_from:
                import shutil
                shutil.copyfile(flash_from, self.run.path("flash.bin"))
            else:
                build_flash(self.run.path("flash.bin"), tree, image)
            spec = dict(spec, flash="flash.bin", sensor=_link_sensor(self.run, spec.get("sensor")))
            nvs = {}
            for part in ((image or {}).get("nvs") or {}, spec.pop("nvs", {})):
                for ns, keys in part.items():
                    nvs.setdefault(ns, {}).update(keys)
            spec["nvs"] = nvs
            from tools.provision.site import write_private
            write_private(self.run.path("spec.json"), json.dumps(spec).encode())
            self.footprint = self._probe()
            # the node's heap is reserved first, the harness built above it with
            # room to spare; node.py fills what is left so the node gets exactly
            # its heap, in one piece (node.py _carve)
            self.node_heap = heap_bytes(heap)
            self.cap = self.node_heap + self.footprint + HARNESS_SLACK
        except BaseException:
            self.run.close()
            raise
        self.duration = duration
        self.on_line = on_line
        self.on_fault = on_fault
        self.summary = None
        self.power_bins = {}  # the power meter's timeline, column by column
        self.rc = None
        self.thread = None

    def _probe(self):
        """Heap the harness (shims, simulated chip, spec) holds before boot:
        added to the cap, so the node itself gets exactly its budget."""
        r = self.run.call(self._script, ["0", "spec.json"], heap="1M", timeout=120)
        foot = [line for line in r.stdout.splitlines() if line.startswith("SIM-FOOTPRINT ")]
        if not foot:
            raise SystemExit("sim: harness probe failed:\n" + r.stdout + r.stderr)
        return int(foot[0].split()[1])

    def start(self):
        import subprocess
        self.proc = self.run.popen(self._script, [self.duration, "spec.json", self.node_heap],
                                   heap=self.cap,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   # a terminal's Ctrl-C reaches the host alone, which stops
                                   # this VM (stop()): a KeyboardInterrupt that lands in the
                                   # VM's GC finaliser left its heap locked and printed a
                                   # MemoryError traceback
                                   start_new_session=True)
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
                if line.startswith("SIM-POWERBINS "):  # node.py power_bins()
                    name, _, vals = line[len("SIM-POWERBINS "):].partition(" ")
                    self.power_bins[name] = [int(v) for v in vals.split(",")] if vals else []
                    continue
                if line.startswith("SIM-FAULT "):
                    if self.on_fault is not None:
                        self.on_fault(line[len("SIM-FAULT "):])
                    self.proc.stdin.write("ok\n")
                    self.proc.stdin.flush()
                self.on_line(line)
        finally:
            self.rc = self.proc.wait()
            if self.flash_to:
                import shutil
                shutil.copyfile(self.run.path("flash.bin"), self.flash_to)
            self.run.close()

    def stop(self):
        if self.thread is not None and self.proc.poll() is None:
            self.proc.kill()  # (its own session: nothing else stops it)
            self.proc.wait(10)

    def wait(self):
        self.thread.join()
        if self.summary is None:
            raise SystemExit("sim: the MicroPython node exited (%s) without a summary" % self.rc)
        tl = (self.summary.get("power") or {}).get("timeline")
        if tl is not None:
            tl["cols"] = self.power_bins
        self.summary["vm"] = launch.describe(self.vm)
        self.summary["heap_cap_bytes"] = self.node_heap
        self.summary["harness_probe_bytes"] = self.footprint
        return self.summary


def run_micropython_node(root, duration, heap=CHIP_HEAP, sensor=None, image=None, on_line=print,
                         vm="unix"):
    """boot.py/main.py from the folder `root` (a test's stand-in firmware)
    on the unix port; returns the summary."""
    spec = {"sensor": sensor} if sensor else {}
    return UnixNode(device_tree(root=root), duration, heap, spec, on_line, image=image,
                    vm=vm).start().wait()


def run_cpython_node(duration, spec, on_line=print, on_fault=None, tree=None):
    """The same harness in this process (shims on CPython): the firmware
    runs from the checkout's sources; its files (config.json) are on a
    LittleFS flash image like the MicroPython node's."""
    import builtins
    import tempfile

    from tools import hostshims
    hostshims.install()
    from tools.vm import node
    spec = dict(spec)
    image = spec.pop("image", None) or {}
    world = {k: v for k, v in spec.items() if k not in ("sensor", "nvs")}
    if on_fault is not None:
        world["on_fault"] = on_fault
    real_print = builtins.print

    def to_line(*a, **kw):  # the firmware's and the harness's prints
        if kw.get("file") is None:
            on_line(" ".join(str(x) for x in a))
        else:
            real_print(*a, **kw)
    import time

    import vclock
    with tempfile.TemporaryDirectory(prefix="vnsim-") as tmp:
        flash = os.path.join(tmp, "flash.bin")
        build_flash(flash, tree or {}, image)
        nvs = {}
        for part in (image.get("nvs") or {}, spec.get("nvs") or {}):
            for ns, keys in part.items():
                nvs.setdefault(ns, {}).update(keys)
        board = node._board(dict(spec, flash=flash))
        builtins.print = to_line
        # the node's sleeps are virtual; give the broker client's and the
        # gateway's threads the interpreter at each one, as the chip's radio
        # runs beside its CPU (else acknowledgements starve and are resent)
        vclock.clock.idle_hook = lambda us: time.sleep(0)
        try:
            return node.run(str(ROOT), duration, board=board, log=to_line,
                            sensor=spec.get("sensor"), image={"nvs": nvs}, world=world)
        finally:
            builtins.print = real_print
            vclock.clock.idle_hook = None
            board.release()
