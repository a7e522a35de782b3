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
from tools import mpbuild
from tools.deps import UMQTT
from tools.paths import LIB, ROOT, STAGE0_FILES, device_files


def frozen_files(**options):
    """Resolve manifest.py with MicroPython's own manifest tool (the
    release's tools/manifestfile.py, require() from its micropython-lib),
    as the ESP32 build does: {target path in the firmware: source file}."""
    tree = mpbuild.source_tree("plain")
    sys.path.insert(0, str(tree / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(tree), "MPY_LIB_DIR": str(tree / "lib" / "micropython-lib"),
        "PORT_DIR": str(tree / "ports" / "esp32"),
        "BOARD_DIR": str(tree / "ports" / "esp32" / "boards" / "ESP32_GENERIC")})
    m.include(str(ROOT / "manifest.py"), **options)
    out = {}
    for r in m.files():
        assert r.target_path not in out, "frozen twice: " + r.target_path
        out[r.target_path] = r.full_path
    return out, m


def test_stage0_files_hold_every_root_module_stage0_imports():
    """Stage 0 is copied and compiled by this list (deploy, the OTA bench's
    VMs): a root module stage0.py imports but the list lacks fails on the
    board at boot, before any app slot can help."""
    import ast
    tree = ast.parse((ROOT / "stage0.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    ours = {n + ".py" for n in names if (ROOT / (n + ".py")).exists()}
    assert "nvsrec.py" in ours and ours <= set(STAGE0_FILES)


def test_the_manifest_freezes_the_whole_app_ssl_and_not_the_stage0():
    targets, m = frozen_files()
    app = {p.relative_to(ROOT).as_posix() for p in device_files()} - {"boot.py", "main.py"}
    # on the board lib/x.py is module x: frozen targets have no lib/ prefix
    want = {p[4:] if p.startswith("lib/") else p for p in app}
    assert "stage0.py" in want and want <= set(targets)
    for p in want:  # our files, umqtt.simple included: the pinned one, not micropython-lib's
        src = p if p.startswith("firmware/") or p in ("stage0.py", "nvsrec.py") else "lib/" + p
        assert targets[p] == str(ROOT / src), p
    assert "boot.py" not in targets and "main.py" not in targets
    assert "_boot.py" in targets and "flashbdev.py" in targets  # the port mounts the filesystem
    assert "ssl.py" in targets  # MicroPython >= 1.23: ssl is Python over the C module tls
    extra = set(targets) - want - {"ssl.py"}
    port = {os.path.basename(f) for f in os.listdir(mpbuild.source_tree("plain") / "ports" / "esp32"
                                                     / "modules")}
    assert extra <= port, extra  # nothing else of the stock build: no webrepl, mip, asyncio
    ns = {}
    exec((ROOT / "firmware" / "version.py").read_text(), ns)
    assert m._metadata[0].version == ns["VERSION"]


def test_the_simulators_frozen_build_freezes_the_same_app_without_the_port_start_up():
    chip, _ = frozen_files()
    unix, _ = frozen_files(port_modules=False)
    port = {os.path.basename(f) for f in os.listdir(mpbuild.source_tree("plain") / "ports" / "esp32"
                                                     / "modules")}
    assert set(chip) - set(unix) == port and set(unix) < set(chip)


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
