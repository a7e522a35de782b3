"""`make deploy PORT=...`: put the device tree on a node over USB.

    python -m tools.deploy --port PORT [--dry-run] [--no-reset]

boot.py and main.py go as source (a board must be able to show them);
stage0.py (the stage 0 boot.py runs) is compiled to /stage0.mpy, and
everything under firmware/ and lib/ is compiled by mpy-cross
(-march=xtensawin), which spares the node's heap the compiler, and goes
into app slot a (/a/firmware, /a/lib: boot.py puts the confirmed slot on
sys.path). A file whose SHA-256 on the node equals the local one is
skipped; files under the slot (or a pre-slot /firmware, /lib) that are not
part of the tree are removed (a stale .py would shadow its .mpy). Then the
OTA state in NVS says: slot a confirmed, version firmware/version.py,
nothing on trial - the security counter is kept, never lowered. Nothing
else on the node is touched: config.json and the NVS key stay. Every file
is written as NAME.new and renamed, so a cut cable leaves the old file or
the new one.

--frozen (`make deploy FROZEN=1`) is for a board flashed with a MicroPython
built with manifest.py: only boot.py and main.py are written, slot a and
/stage0.mpy, /nvsrec.mpy are cleared, so the frozen firmware (bytecode in flash, not heap) runs until a
signed OTA update installs a newer slot. The version recorded is this
tree's: deploy from the checkout the image was built from.
"""
import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

# the tree's one home (also the OTA builder's); stage, slot_tree and
# version_code stay importable from here for the simulator
from tools.devicetree import SLOT as _SLOT
from tools.devicetree import SOURCE as _SOURCE
from tools.devicetree import slot_tree, stage, version_code
from tools.paths import STAGE0_FILES
from tools.provision.board import Board, BoardError

_STAGE0 = tuple(f[:-3] + ".mpy" for f in STAGE0_FILES)  # compiled at the root; frozen in a FROZEN=1 image
_TREES = ("a/firmware", "a/lib", "firmware", "lib")  # walked on the node; the last two are pre-slot

# runs on the node after the files: slot a is the confirmed app, its version
_SET_SLOT = """
import stage0
stage0.commit({"act": 0, "pend": -1, "tries": 0, "img": 0, "ver": %d})
"""

# runs on the node: "<sha256 hex> <path>" for every file under the trees
_REMOTE_HASHES = """
import os, hashlib, binascii
def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(512)
            if not b:
                break
            h.update(b)
    print(binascii.hexlify(h.digest()).decode(), p[1:])
def walk(d):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        if e[1] & 0x4000:
            walk(d + "/" + e[0])
        else:
            digest(d + "/" + e[0])
for name in %r:
    try:
        digest(name)
    except OSError:
        pass
for d in %r:
    walk("/" + d)
"""


def remote_hashes(board):
    out = board.run(_REMOTE_HASHES % (tuple("/" + f for f in ("boot.py", "main.py") + _STAGE0), _TREES))
    hashes = {}
    for line in out.splitlines():
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            hashes[parts[1]] = parts[0]
    return hashes


def plan(local, remote):
    """(to_write, unchanged, to_remove) paths."""
    write = [p for p, data in local.items() if remote.get(p) != hashlib.sha256(data).hexdigest()]
    same = [p for p in local if p not in write]
    remove = [p for p in remote if p not in local
              and (p.startswith(tuple(t + "/" for t in _TREES)) or p in _STAGE0)]
    return write, same, sorted(remove)


def deploy(port, dry_run=False, reset=True, log=print, frozen=False):
    with tempfile.TemporaryDirectory(prefix="vitalnode-deploy-") as d:  # a stage of its own
        local = slot_tree(stage(Path(d) / "root"))
    if frozen:  # the app is in the image; a slot would shadow it
        local = {p: local[p] for p in _SOURCE}
    with Board(port) as b:
        b.enter()
        info = b.probe_esp32()
        log("deploy: %s on %s" % (info["machine"], port))
        write, same, remove = plan(local, remote_hashes(b))
        log("deploy: %d file(s) to write, %d unchanged, %d stale to remove"
            % (len(write), len(same), len(remove)))
        if dry_run:
            for p in write:
                log("  would write %s" % p)
            for p in remove:
                log("  would remove %s" % p)
            return write, same, remove
        dirs = sorted({str(Path(p).parent) for p in write} - {"."})
        if dirs:
            b.run("import os\nfor d in %r:\n try:\n  os.mkdir('/' + d)\n except OSError:\n  pass\n"
                  % (sorted({"/".join(d.split("/")[:i + 1]) for d in dirs
                             for i in range(len(d.split("/")))}),))
        total = sum(len(local[p]) for p in write)
        done = 0
        for i, p in enumerate(write, 1):
            b.write_file(p, local[p])
            done += len(local[p])
            log("  [%d/%d] %s (%d bytes, %d%%)" % (i, len(write), p, len(local[p]),
                                                  100 * done // max(total, 1)))
        for p in remove:
            b.run("import os\nos.remove(%r)" % ("/" + p))
            log("  removed %s" % p)
        b.run(_SET_SLOT % version_code())
        log("deploy: wrote %d bytes in %d file(s); %d unchanged; %d removed; %s"
            % (total, len(write), len(same), len(remove),
               "the frozen firmware runs" if frozen else "slot %s confirmed" % _SLOT))
        if reset:
            log("deploy: resetting the node")
            b.reset()
    return write, same, remove


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--dry-run", action="store_true", help="show what would change")
    ap.add_argument("--no-reset", action="store_true", help="leave the node at the REPL")
    ap.add_argument("--frozen", action="store_true",
                    help="the board's MicroPython has the firmware frozen (manifest.py)")
    a = ap.parse_args(argv)
    try:
        deploy(a.port, a.dry_run, not a.no_reset, frozen=a.frozen)
    except BoardError as e:
        print("deploy: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
