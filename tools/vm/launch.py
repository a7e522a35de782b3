"""The one launcher for MicroPython VMs running device code on this host.

    from tools.vm import launch
    with launch.Run("unix", heap="256K") as run:     # the 32-bit 1.27 build
        r = run.call("tools/vm/mprunner.py", ["test_outbox"])      # CompletedProcess
        p = run.popen("tools/vm/node.py", [...], stdin=PIPE)       # Popen

VMs:
  unix     MicroPython 1.27.0, 32-bit unix port, stock variant (tools.mpbuild
           "plain"): the default, the chip's own version and object sizes
  frozen   the same with VitalNode frozen in by our manifest.py (firmware/,
           lib/, umqtt, ssl come from the binary, not the filesystem)
  unix64   the third-party 64-bit PyPI wheel (1.28 preview): an option for
           comparison only; objects are twice the chip's size

A Run is a private working folder (a new temporary directory) that the VM
starts in: the simulated flash files of its boards live there, and the
folders it imports from are reached through short relative names linked
into it - hide (stubs for what the chip lacks), shims, lib, root (the
checkout), tests, runner - so no absolute path of the checkout reaches the
VM's heap (module file names are heap strings: a figure must not depend on
where the repository was cloned). sys.path is MICROPYPATH:
  hide : .frozen : shims : [tests] : [lib] : root
The 32-bit builds have the shims and the simulator's harness frozen in
(the chip's ROM, tools/vm/sim_manifest.py), and `frozen` also the firmware
(as on a firmware built from manifest.py; boot.py and main.py are never
frozen), so they come from .frozen; the folders serve the rest.
The heap is capped with -X heapsize (a real MemoryError past it).
"""
import os
import shutil
import subprocess
import tempfile

from tools import mpbuild
from tools.paths import BUILD, DEVICE_TESTS, LIB, ROOT, SHIMS, venv_tool
from tools.vm.esp32_modules import write_hide_dir

VMS = ("unix", "frozen", "unix64")


def binary(vm):
    if vm == "unix":
        return str(mpbuild.binary("plain"))
    if vm == "frozen":
        return str(mpbuild.binary("frozen"))
    if vm == "unix64":
        return venv_tool("micropython")
    raise ValueError("vm: one of %s" % ", ".join(VMS))


def describe(vm):
    """What `vm` is, for reports (summary.json's "vm")."""
    return {"unix": "micropython %s unix 32-bit" % mpbuild.VERSION,
            "frozen": "micropython %s unix 32-bit frozen" % mpbuild.VERSION,
            "unix64": "micropython 1.28-preview unix 64-bit (PyPI wheel)"}[vm]


class Run:
    """A VM invocation's private working folder and environment."""

    def __init__(self, vm="unix", heap="1M", tests=DEVICE_TESTS, extra_path=(), keep=False):
        self.vm = vm
        self.heap = heap
        self.exe = binary(vm)
        self.dir = tempfile.mkdtemp(prefix="vnvm-")
        self.keep = keep
        links = {"shims": SHIMS, "lib": LIB, "root": ROOT, "runner": ROOT / "tools" / "vm"}
        if tests is not None:
            links["tests"] = tests
        for name, target in links.items():
            os.symlink(target, os.path.join(self.dir, name))
        write_hide_dir(BUILD / "vm" / "hide")
        os.symlink(BUILD / "vm" / "hide", os.path.join(self.dir, "hide"))
        # .frozen early: the 32-bit builds freeze the shims (the chip's ROM,
        # tools/vm/sim_manifest.py); the shims folder serves the unix64 wheel
        path = ["hide", ".frozen", "shims"] + (["tests"] if tests is not None else []) \
            + list(extra_path)
        if vm != "frozen":
            path += ["lib"]
        path += ["root"]
        self.env = dict(os.environ, MICROPYPATH=":".join(path))

    def argv(self, script, args=(), heap=None):
        """script: a file (relative to the working folder or absolute), or
        "-m module" for a frozen one (the harness: "-m node")."""
        head = script.split() if script.startswith("-m ") else [script]
        return [self.exe, "-X", "heapsize=%s" % (heap or self.heap)] + head + [str(a) for a in args]

    def call(self, script, args=(), timeout=600, heap=None, **kw):
        """Run `script` (relative to the working folder, e.g.
        "runner/mprunner.py", or absolute) to completion."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["timeout", str(timeout)] + self.argv(script, args, heap),
                              cwd=self.dir, env=self.env, **kw)

    def popen(self, script, args=(), heap=None, **kw):
        return subprocess.Popen(self.argv(script, args, heap), cwd=self.dir, env=self.env, **kw)

    def path(self, name):
        """A file in the working folder, as the host sees it."""
        return os.path.join(self.dir, name)

    def close(self):
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
