"""A figure must not depend on where the repository was cloned: the same
tree at a 200-character path gives the same simulated node - its beats and
frames exactly, its heap within HEAP_NOISE - and the same compiled device
code. The heap is the same to the byte on a quiet machine; under load the
real broker's acknowledgements reach the node at other virtual instants
and the peak moves by a few hundred bytes (628 B seen in CI). A path held
in the heap would cost every module its length: KBs at 200 characters."""
import json
import os
import shutil
import subprocess
import sys

from tools.mpbuild import cache_dir, shared_dir
from tools.paths import ROOT, data_dir


def _copy_tree(dst):
    """The checkout as a clone would hold it (tracked files and new ones
    not ignored), plus the fetched umqtt.simple."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in [f for f in files if f] + [str(p.relative_to(ROOT)) for p in
                                          (ROOT / "lib" / "umqtt").rglob("*") if p.is_file()]:
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _env():
    return dict(os.environ, VITALNODE_DATA=str(data_dir()), VITALNODE_MP_CACHE=str(cache_dir()),
                VITALNODE_MP_SOURCE=str(shared_dir()))


def _sim(root, out, site, *args):
    env = _env()
    # power saving off: its radio batches end when the real broker's acks arrive,
    # at virtual instants that move with the machine's load (host_tests/host/test_sim_power.py)
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--duration", "30", "--power-save", "off",
                        "--out", str(out),
                        "--workdir", str(out.with_suffix("")), "--dev-site", str(site)]
                       + list(args), cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


HEAP_NOISE = 1024
_HEAP = ("peak_heap_bytes", "min_free_heap_bytes")


def _figures(s):
    node = s["per_node"][0]
    return {k: s[k] for k in _HEAP + ("frames_stored", "beats_detected", "se", "ppv", "vm")} | {
        "harness_heap_bytes": node["harness_heap_bytes"]}


def test_a_checkout_at_a_200_character_path_gives_the_same_node(tmp_path, dev_site_dir):
    deep = tmp_path
    while len(str(deep)) < 170:  # then padded to 200 (the temp root may be long: xdist)
        deep = deep / "a-rather-long-folder-name"
    deep = deep / ("v" * (200 - len(str(deep)) - 1))
    assert len(str(deep)) == 200
    _copy_tree(deep)
    (deep / ".venv").symlink_to(ROOT / ".venv")  # the tools, as `make deps` would install them
    for layout in ([], ["--frozen"]):
        here = _figures(_sim(ROOT, tmp_path / "here.json", dev_site_dir, *layout))
        there = _figures(_sim(deep, tmp_path / "there.json", dev_site_dir, *layout))
        exact = [k for k in here if k not in _HEAP]
        assert [here[k] for k in exact] == [there[k] for k in exact], (layout, here, there)
        assert all(abs(here[k] - there[k]) < HEAP_NOISE for k in _HEAP), (layout, here, there)
        assert here["frames_stored"] >= 6 and here["peak_heap_bytes"] > 0
    # the device code compiles to the same bytes: no path in a .mpy
    for root in (ROOT, deep):
        subprocess.run([sys.executable, "-m", "tools.compile_check", "--out",
                        str(tmp_path / ("mpy-" + str(root == ROOT)))], cwd=root, check=True,
                       capture_output=True, env=_env())
    a, b = tmp_path / "mpy-True", tmp_path / "mpy-False"
    names = sorted(p.relative_to(a) for p in a.rglob("*.mpy"))
    assert names and names == sorted(p.relative_to(b) for p in b.rglob("*.mpy"))
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
