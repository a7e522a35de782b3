"""OTA end to end with the host tools: `make ota-bundle` signs with
`cryptography`, the device code verifies it (on CPython and on the
MicroPython unix port over a real socket), `ota-verify` catches tampering,
the update server serves bundles and per-device bindings."""
import json
import os
import subprocess
import sys
import time

import pytest

from tools.ota import bundle
from tools.ota.server import serve_in_thread
from tools.paths import ROOT
from tools.vm import launch


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return bundle.keygen(tmp_path_factory.mktemp("otakey"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return bundle.app_files()


def _n(pub):
    return bundle.load_public(pub).public_numbers().n


def test_keygen_refuses_to_replace_a_key(keys):
    with pytest.raises(bundle.BundleError):
        bundle.keygen(keys[0].parent)
    assert oct(keys[0].stat().st_mode & 0o777) == "0o600"


def test_a_built_bundle_verifies_and_any_tampering_is_caught(tmp_path, keys, app):
    out = tmp_path / "b"
    man = bundle.build(out, keys[0], "9.0.0", 3, files=app, log=lambda s: None)
    assert man["files"] and all(f["path"].split("/")[0] in ("firmware", "lib") for f in man["files"])
    assert not any(f["path"] in ("boot.py", "main.py") for f in man["files"])  # stage 0 never ships
    bundle.verify(out, keys[1], log=lambda s: None)
    victim = out / "files" / man["files"][0]["path"]
    victim.write_bytes(victim.read_bytes() + b"\x00")
    with pytest.raises(bundle.BundleError, match="does not match"):
        bundle.verify(out, keys[1], log=lambda s: None)
    env = bytearray((out / "manifest.vnm").read_bytes())
    env[-3] ^= 1
    (out / "manifest.vnm").write_bytes(bytes(env))
    with pytest.raises(bundle.BundleError, match="signature"):
        bundle.verify(out, keys[1], log=lambda s: None)


def test_the_cli_builds_verifies_and_reports_errors(tmp_path, keys):
    run = lambda *a: subprocess.run([sys.executable, "-m", "tools.ota", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    r = run("build", "--out", str(tmp_path / "b"), "--key", str(keys[0]), "--version", "1.2.3",
            "--counter", "7")
    assert r.returncode == 0, r.stderr
    assert "version 1.2.3, counter 7" in r.stdout and "[1/" in r.stdout
    r = run("verify", str(tmp_path / "b"), "--pubkey", str(keys[1]))
    assert r.returncode == 0 and "verifies" in r.stdout
    r = run("build", "--out", str(tmp_path / "c"), "--key", str(keys[0]), "--version", "1.2")
    assert r.returncode == 1 and "version must be X.Y.Z" in r.stderr


def _vm(tmp, url, n, url2=None):
    (tmp / "n.hex").write_text("%x" % n)
    with launch.Run("unix", heap="512K", tests=None) as run:
        r = run.call("runner/ota_node.py", [url, tmp / "n.hex", int(time.time())]
                     + ([url2] if url2 else []), timeout=120)
    for line in r.stdout.splitlines():
        if line.startswith("OTA-RESULT "):
            return json.loads(line[11:])
    raise AssertionError(r.stdout + r.stderr)


def test_a_full_update_over_http_verified_on_the_micropython_unix_port(tmp_path, keys, app):
    """The signature check, the hashing and the socket are MicroPython's."""
    cur = bundle.tree_version()
    major, minor, patch = map(int, cur.split("."))
    newer = "%d.%d.%d" % (major, minor + 1, 0)
    bundle.build(tmp_path / "v2", keys[0], newer, 2, files=app, log=lambda s: None)
    bundle.build(tmp_path / "v1", keys[0], cur, 2, files=app, log=lambda s: None)
    served = []
    srv2, url2 = serve_in_thread(tmp_path / "v2", log=served.append)
    srv1, url1 = serve_in_thread(tmp_path / "v1")
    try:
        res = _vm(tmp_path, url2, _n(keys[1]), url1)
    finally:
        srv2.shutdown()
        srv1.shutdown()
    assert res["steps"] == ["installed " + newer, "boot slot 1 trial True", "confirmed True",
                            "second refused: downgrade"]
    assert res["state"]["ctr"] == 2 and res["state"]["act"] == 1
    assert res["events"] == ["ota-install:None", "ota-confirm:None", "ota-reject:downgrade"]
    assert sorted(p.split("/")[-1] for p in app if p.startswith("firmware/")) == res["slot_b"]
    assert len(served) == 1 + len(app)  # the manifest, then each file once


def test_the_server_vouches_for_one_device_only(tmp_path, keys, app):
    """A bound bundle: the server's binding tag comes from the registry's
    ota-bind sub-key, and the node's keystore derives the same key."""
    from tools import hostshims
    hostshims.install()
    import simboard

    from firmware import keystore, ota, storage
    from firmware.otamanifest import OtaError
    from firmware.httpget import HttpSource
    from tools.provision import keys as pkeys
    from tools.provision.registry import Registry
    reg = Registry(tmp_path / "reg.sqlite")
    root = pkeys.new_root()
    b = simboard.new_board()
    storage.use(b.fs)
    keystore.install(root.hex(), 1)
    ks = keystore.load()
    reg.begin(ks.device_id, 1, pkeys.subkeys(root, ks.device_id), "esp32", False)
    reg.activate(ks.device_id)
    other_id = "010203040506"
    bundle.build(tmp_path / "bound", keys[0], "99.0.0", 0, files=app, bound=True,
                 devices=[ks.device_id], log=lambda s: None)
    log = []
    srv, url = serve_in_thread(tmp_path / "bound", registry=tmp_path / "reg.sqlite", log=log.append)
    try:
        try:
            ota.install(HttpSource(url), ks, _n(keys[1]))
        except OtaError:
            raise AssertionError(log)
        other = simboard.new_board(uid=bytes.fromhex(other_id))
        storage.use(other.fs)
        root2 = pkeys.new_root()
        keystore.install(root2.hex(), 1)
        # even registered and active, a node the manifest does not name gets no tag from the
        # server, and refuses the bundle itself before asking
        reg.begin(other_id, 1, pkeys.subkeys(root2, other_id), "esp32", False)
        reg.activate(other_id)
        e = pytest.raises(OtaError, ota.install, HttpSource(url), keystore.load(), _n(keys[1]))
        assert e.value.reason == "binding"
        from tools.ota.server import binding_tag
        from tools.provision.registry import RegistryError
        with pytest.raises(RegistryError, match="does not name"):
            binding_tag(tmp_path / "reg.sqlite", other_id,
                        (tmp_path / "bound" / "manifest.vnm").read_bytes())
    finally:
        srv.shutdown()


def _esptool_app(append_digest=True, app_desc=True):
    """An app image as esptool's elf2image writes one (its own classes)."""
    import struct

    from esptool.bin_image import ELFSection, ESP32FirmwareImage
    im = ESP32FirmwareImage()
    im.entrypoint = 0x40080000
    desc = struct.pack("<I", bundle.APP_DESC_MAGIC if app_desc else 0x12345678) + bytes(252)
    im.segments = [ELFSection(b".flash.appdesc", 0x3F400020, desc + bytes(range(256)) * 8, 0),
                   ELFSection(b".iram0.text", 0x40080000, b"\x37" * 3000, 0)]
    im.append_digest = append_digest
    p = _esptool_app.dir / ("app-%d-%d.bin" % (append_digest, app_desc))
    im.save(str(p))
    return p.read_bytes()


def test_bundled_images_are_checked_as_the_bootloader_will(tmp_path, keys, app):
    _esptool_app.dir = tmp_path
    good = _esptool_app()
    flipped = bytearray(good)
    flipped[40] ^= 1
    cases = {"damaged": bytes(flipped), "not-an-image": os.urandom(5000), "empty": b"",
             "bootloader": _esptool_app(app_desc=False), "truncated": good[:1000]}
    for name, img in cases.items():
        (tmp_path / name).write_bytes(img)
        with pytest.raises(bundle.BundleError) as e:
            bundle.build(tmp_path / ("b-" + name), keys[0], files=app, image=tmp_path / name,
                         log=lambda *a: None)
        assert name in str(e.value)
        assert not (tmp_path / ("b-" + name)).exists()  # nothing written
    (tmp_path / "good").write_bytes(good)
    bundle.build(tmp_path / "b", keys[0], files=app, image=tmp_path / "good", log=lambda *a: None)
    assert (tmp_path / "b" / "image.bin").read_bytes() == good


def test_the_simulated_bootloader_agrees_with_esptool(tmp_path):
    """tools/shims/espimage.py (what esp32.Partition.set_boot checks in the
    simulation) accepts esptool's images and the device fixtures' ones, and
    refuses each damage esptool refuses."""
    sys.path.insert(0, str(ROOT / "tools" / "shims"))
    sys.path.insert(0, str(ROOT / "host_tests" / "device"))
    try:
        import espimage
        from esptool.bin_image import LoadFirmwareImage
        import otafixture
    finally:
        del sys.path[:2]
    _esptool_app.dir = tmp_path
    images = [_esptool_app(), _esptool_app(append_digest=False), otafixture.app_image(seed=3)]
    for img in images:
        im = LoadFirmwareImage("esp32", img)  # esptool reads the fixture's image too
        assert im.checksum == im.calculate_checksum()
        assert not im.append_digest or im.stored_digest == im.calc_digest
        size = len(img) + 4096

        def read(off, n, img=img):
            return (img + b"\xff" * 4096)[off:off + n]
        assert espimage.check(read, size) == len(img)
        for at in (0, 1, 12, 24 + 8 + 5, len(img) - 1):
            bad = bytearray(img)
            bad[at] ^= 0x10
            if at == 1:
                bad[at] = 0  # no segments
            with pytest.raises(espimage.ImageInvalid):
                espimage.check(lambda off, n, b=bytes(bad): (b + b"\xff" * 4096)[off:off + n], size)
