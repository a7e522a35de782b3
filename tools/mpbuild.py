"""The chip's own MicroPython for this host: MicroPython 1.27.0 (the
release users flash) built as a 32-bit unix port from ../shared/micropython.

    python -m tools.mpbuild [plain|frozen|all]   # build what changed, print paths
    from tools.mpbuild import binary
    binary("plain")    # Path of the stock unix variant, 32-bit
    binary("frozen")   # the same with VitalNode frozen in by our manifest.py

plain   the stock unix variant (ports/unix/variants/standard), 32-bit: 4-byte
        pointers and 31-bit small ints as on the ESP32, so objects and heap
        figures have the chip's sizes. `make sim` runs the firmware on it as
        `make deploy` puts it on a board (.mpy files on the flash).
frozen  the same binary, but its frozen modules are what our manifest.py
        freezes (through tools/vm/unix_manifest.py, with MicroPython's own
        manifest tool, `require()` resolved from the release's micropython-lib),
        the way the ESP32 build freezes it: bytecode and qstrs in the binary's
        rodata, not the heap.
Both also freeze the simulated chip's ROM (tools/vm/sim_manifest.py): the
shims that stand in for the ESP32's C modules, and the harness - so they
cost the node no heap and intern none of its names, as on the chip.

Both are cached under .cache/micropython (VITALNODE_MP_CACHE overrides; a
checkout at another path may share it) and rebuilt only when an input
changes: the source archive (checked against its SHA256SUMS), the build
options, and for `frozen` every file the manifest freezes. No binary is
committed. The build needs gcc-multilib (Makefile: tools/ensure-apt.sh).
Builds are serialised by a lock file, so parallel test layers share one.
Each binary is kept under its input key (bin/<kind>-<key>), so checkouts
that share the cache with different shims or firmware never run each
other's build; the newest KEEP_BINARIES are kept.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tools.paths import FIRMWARE, LIB, ROOT

VERSION = "1.27.0"
SHARED = ROOT.parent / "shared" / "micropython"
ARCHIVE = "micropython-%s-src.tar.xz" % VERSION
VM = ROOT / "tools" / "vm"
MANIFESTS = {"plain": VM / "plain_manifest.py", "frozen": VM / "unix_manifest.py"}
# btree: berkeley-db is not in the archive; ffi: libffi:i386 is not needed
MAKE_ARGS = ["MICROPY_FORCE_32BIT=1", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0"]
KINDS = ("plain", "frozen")
KEEP_BINARIES = 8


class BuildError(Exception):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("VITALNODE_MP_CACHE", ROOT / ".cache" / "micropython")).resolve()


def shared_dir() -> Path:
    return Path(os.environ.get("VITALNODE_MP_SOURCE", SHARED)).resolve()


def _archive_sha():
    src = shared_dir()
    arc = src / ARCHIVE
    if not arc.exists():
        raise BuildError("%s is missing: the MicroPython %s source archive (see %s/README.md)"
                         % (arc, VERSION, src))
    want = None
    sums = src / "SHA256SUMS"
    if sums.exists():
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == ARCHIVE:
                want = parts[0]
    if want is None:
        raise BuildError("%s has no checksum for %s" % (sums, ARCHIVE))
    h = hashlib.sha256()
    with open(arc, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != want:
        raise BuildError("%s does not match its SHA256SUMS entry" % arc)
    return want


def source_tree(kind) -> Path:
    """The unpacked release, one tree per kind (unpacked once per archive
    checksum; a BUILD= on make's command line would reach the mpy-cross
    sub-make too, so each kind builds in its own tree's default place)."""
    sha = _archive_sha()
    top = cache_dir() / kind
    tree = top / ("micropython-" + VERSION)
    stamp = top / ".sha256"
    if tree.is_dir() and stamp.exists() and stamp.read_text() == sha:
        return tree
    shutil.rmtree(top, ignore_errors=True)
    top.mkdir(parents=True)
    with tarfile.open(shared_dir() / ARCHIVE) as t:
        t.extractall(top, filter="data")
    if not tree.is_dir():
        raise BuildError("the archive did not unpack to micropython-%s/" % VERSION)
    stamp.write_text(sha)
    return tree


def frozen_inputs(kind):
    """Every file of ours whose content the binary of `kind` depends on:
    the simulated chip's ROM (sim_manifest.py: shims and the harness) in
    both, and for `frozen` our manifest.py and everything it freezes."""
    files = [MANIFESTS[kind], VM / "sim_manifest.py", VM / "node.py"]
    files += sorted(p for p in (ROOT / "tools" / "shims").glob("*.py"))
    if kind == "frozen":
        files.append(ROOT / "manifest.py")
        for d in (FIRMWARE, LIB):
            files += sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _key(kind, sha):
    h = hashlib.sha256()
    h.update(("%s %s %s\n" % (kind, sha, " ".join(MAKE_ARGS))).encode())
    for f in frozen_inputs(kind):
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _make(tree, kind, log):
    args = ["make", "-C", str(tree / "ports" / "unix"), "-j%d" % max(2, os.cpu_count() or 2)] \
        + MAKE_ARGS
    args.append("FROZEN_MANIFEST=" + str(MANIFESTS[kind]))
    log("building MicroPython %s (%s, 32-bit unix port) ..." % (VERSION, kind))
    # mpy-cross first, on its own: make passes command-line variables on to
    # the sub-make that would otherwise build it, and FROZEN_MANIFEST breaks
    # it; it gets the same 32-bit flags, so either way it is built alike
    jobs = args[3]
    for cmd in (["make", "-C", str(tree / "mpy-cross"), jobs] + MAKE_ARGS, args):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            break
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        hint = ""
        if "bits/libc-header-start.h" in tail or "gnu/stubs-32.h" in tail or "-lgcc" in tail:
            hint = "\n(32-bit build support is missing: install Debian's gcc-multilib)"
        raise BuildError("MicroPython %s build failed:\n%s%s" % (kind, tail, hint))


def binary(kind="plain", log=None) -> Path:
    """Path to the 32-bit 1.27 binary of this kind for the current inputs,
    built first if no cached one has them."""
    if kind not in KINDS:
        raise ValueError("kind: plain or frozen")
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    sha = _archive_sha()
    key = _key(kind, sha)
    bins = cache_dir() / "bin"
    out = bins / ("%s-%s" % (kind, key[:24]))
    if out.exists():
        return out
    bins.mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if out.exists():
            return out
        tree = source_tree(kind)
        build = tree / "ports" / "unix" / "build-standard"
        exe = build / "micropython"
        exe.unlink(missing_ok=True)
        # the manifest tool recompiles a frozen .py only when it is newer
        # than its .mpy: another checkout sharing this cache may have left a
        # newer .mpy of a different file under the same name
        shutil.rmtree(build / "frozen_mpy", ignore_errors=True)
        (build / "frozen_content.c").unlink(missing_ok=True)
        _make(tree, kind, log)
        if not exe.exists():
            raise BuildError("the build made no %s" % exe)
        tmp = out.with_name(out.name + ".tmp")
        shutil.copy2(exe, tmp)
        tmp.replace(out)
        old = sorted((p for p in bins.iterdir() if not p.name.endswith(".tmp")),
                     key=lambda p: p.stat().st_mtime)
        for p in old[:-KEEP_BINARIES]:
            p.unlink(missing_ok=True)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    which = argv[0] if argv else "all"
    if which not in KINDS + ("all",):
        print("usage: python -m tools.mpbuild [plain|frozen|all]", file=sys.stderr)
        return 2
    try:
        for kind in (KINDS if which == "all" else (which,)):
            print("%s: %s" % (kind, binary(kind)))
    except BuildError as e:
        print("mpbuild: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
