"""Packaging for users who build or install MicroPython themselves: the
freeze manifest covers the device tree (and not the stage 0), the mip
package.json is current, and the real mpremote's mip installs the node
from it onto the emulated board, umqtt.simple from a local mirror of the
micropython-lib index (no network)."""
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from emulated import Emu
from tools.deps import UMQTT
from tools.paths import LIB, ROOT, device_files


def _py_files(d):
    return {os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs
            if f.endswith(".py") and "__pycache__" not in r}


def frozen_targets():
    """Run manifest.py with MicroPython's manifest API as documented
    (freeze/package/module resolve paths from the manifest's folder);
    returns {target path on the board: source file}."""
    out = {}
    calls = []

    def add(target, src):
        assert target not in out, "frozen twice: " + target
        assert os.path.isfile(src), src
        out[target] = src

    def package(name, files=None, base_path=".", opt=None):
        base = os.path.join(ROOT, base_path)
        for f in files or sorted(_py_files(os.path.join(base, name))):
            add(name + "/" + f, os.path.join(base, name, f))

    def module(path, base_path=".", opt=None):
        add(path, os.path.join(ROOT, base_path, path))

    g = {"freeze": lambda p, *a, **k: calls.append(("freeze", p)),
         "include": lambda p, **k: calls.append(("include", p)),
         "require": lambda n, **k: calls.append(("require", n)),
         "metadata": lambda **k: calls.append(("metadata", k)),
         "package": package, "module": module}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile((ROOT / "manifest.py").read_text(), "manifest.py", "exec"), g)
    finally:
        os.chdir(cwd)
    return out, calls


def test_the_manifest_freezes_the_whole_app_and_not_the_stage0():
    targets, calls = frozen_targets()
    app = {p.relative_to(ROOT).as_posix() for p in device_files()} - {"boot.py", "main.py"}
    # on the board lib/x.py is module x: frozen targets have no lib/ prefix
    want = {p[4:] if p.startswith("lib/") else p for p in app}
    assert set(targets) == want
    assert "boot.py" not in targets and "main.py" not in targets
    assert ("freeze", "$(PORT_DIR)/modules") in calls  # _boot.py mounts the filesystem
    assert not any(c[0] == "require" for c in calls)  # no second umqtt.simple
    meta = [c[1] for c in calls if c[0] == "metadata"]
    ns = {}
    exec((ROOT / "firmware" / "version.py").read_text(), ns)
    assert meta == [{"description": meta[0]["description"], "version": ns["VERSION"]}]


def test_package_json_lists_every_device_file_and_is_current():
    pkg = json.loads((ROOT / "package.json").read_text())
    urls = dict(pkg["urls"])
    want = {p.relative_to(ROOT).as_posix() for p in device_files() if (LIB / "umqtt") not in p.parents}
    assert set(urls) == want and all(urls[k] == k for k in urls)  # same path, relative URL
    assert pkg["deps"] == [["umqtt.simple", UMQTT["version"]]]
    r = subprocess.run([sys.executable, "-m", "tools.packaging", "--check"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def index_mirror(tmp_path):
    """A micropython-lib index on loopback holding umqtt.simple at the
    pinned version: the file tools/deps.py fetched and checked."""
    src = (LIB / "umqtt" / "simple.py").read_bytes()
    h = hashlib.sha256(src).hexdigest()
    root = tmp_path / "index"
    (root / "file" / h[:2]).mkdir(parents=True)
    (root / "file" / h[:2] / h[:8]).write_bytes(src)  # the index names files by short hash
    pkg = root / "package" / "py" / "umqtt.simple"
    pkg.mkdir(parents=True)
    (pkg / (UMQTT["version"] + ".json")).write_text(json.dumps(
        {"hashes": [["umqtt/simple.py", h[:8]]], "version": UMQTT["version"]}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


def test_mip_installs_the_node_from_package_json(tmp_path, index_mirror):
    emu = Emu(tmp_path / "flash")
    try:
        r = emu.mpremote("mip", "install", "--target", "/", "--no-mpy", "--index", index_mirror,
                         str(ROOT / "package.json"))
        fs = tmp_path / "flash" / "fs"
        for p in device_files():
            rel = p.relative_to(ROOT).as_posix()
            if rel.startswith("lib/umqtt/"):
                rel = rel[4:]  # a dependency: mip puts it under the target, /umqtt
            assert (fs / rel).read_bytes() == p.read_bytes(), rel
        assert "umqtt.simple (%s)" % UMQTT["version"] in r.stdout
        # the board imports the installed tree (the first slot-less boot path)
        out = emu.mpremote("exec", "import sys; sys.path.append('/lib'); import qrs, "
                                   "firmware.config, firmware.uplink; print('imported')").stdout
        assert "imported" in out
    finally:
        emu.stop()
