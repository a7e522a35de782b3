"""Manifest strictness on the host (issue 19 §4): the host tools read a
signed manifest with the node's own strict parser, so what the node
refuses they refuse too; the names a bundle may not shadow cover every
module built into or frozen in the chip's MicroPython."""
import json

import pytest
from cryptography.hazmat.primitives import hashes

from tools.ota import bundle
from tools.paths import LIB


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return bundle.keygen(tmp_path_factory.mktemp("otakey"))


def _resign(out, key_path, body):
    otamanifest = bundle._device()
    key = bundle.load_private(key_path)
    sig = key.sign(otamanifest.MAGIC + body, bundle.PSS, hashes.SHA256())
    (out / "manifest.vnm").write_bytes(otamanifest.MAGIC + sig + body)


def test_ota_verify_refuses_ambiguous_manifests_as_the_node_does(tmp_path, keys):
    out = tmp_path / "b"
    app = {"firmware/app.py": b"print('v9')\n"}
    man = bundle.build(out, keys[0], "9.0.0", 3, files=app, log=lambda s: None)
    text = json.dumps(man)
    for body, why in ((text[:-1] + ', "version": "99.0.0"}', "duplicate key 'version'"),
                      (text.replace('"9.0.0"', '"\\u0669.0.0"'), "version must be X.Y.Z"),
                      (text.replace('"counter": 3', '"counter": 4294967296'), "out of range")):
        _resign(out, keys[0], body.encode())
        with pytest.raises(bundle.BundleError, match=why):
            bundle.verify(out, keys[1], log=lambda s: None)
    with pytest.raises(bundle.BundleError, match="version must be X.Y.Z"):
        bundle.build(tmp_path / "c", keys[0], "\u0661.\u0662.\u0663", 3, files=app,
                     log=lambda s: None)
    with pytest.raises(bundle.BundleError, match="shadow"):
        bundle.build(tmp_path / "d", keys[0], "9.0.0", 3,
                     files=dict(app, **{"lib/boot.py": b"x = 1\n"}), log=lambda s: None)


def test_reserved_names_cover_every_module_of_the_chips_firmware():
    from tools.vm import esp32_modules
    otamanifest = bundle._device()
    own = {"firmware"} | {p.stem for p in LIB.glob("*.py")} | {p.name for p in LIB.iterdir()
                                                               if p.is_dir()}
    chip = set(esp32_modules.builtin()) | set(esp32_modules.our_frozen())
    missing = sorted(chip - own - set(otamanifest.RESERVED))
    assert missing == []
    for stage0_module in ("boot", "main", "stage0", "nvsrec", "firmware"):
        assert stage0_module in otamanifest.RESERVED
    assert not own & (set(otamanifest.RESERVED) - {"firmware", "stage0", "nvsrec"})


def test_a_bound_bundle_names_its_devices_inside_the_signed_manifest(tmp_path, keys):
    import subprocess
    import sys

    from tools.paths import ROOT
    app = {"firmware/app.py": b"print('v9')\n"}
    man = bundle.build(tmp_path / "b", keys[0], "9.0.0", 3, files=app, bound=True,
                       devices=["240ac4000abc"], log=lambda s: None)
    otamanifest = bundle._device()
    m = otamanifest.open_signed((tmp_path / "b" / "manifest.vnm").read_bytes(),
                                bundle.load_public(keys[1]).public_numbers().n)
    assert man["devices"] == m.devices == ["240ac4000abc"]
    for devs, why in ((["gateway"], "12 lower-case hex"), (["240AC4000ABC"], "12 lower-case hex")):
        with pytest.raises(bundle.BundleError, match=why):
            bundle.build(tmp_path / "c", keys[0], "9.0.0", 3, files=app, bound=True, devices=devs,
                         log=lambda s: None)
    for args, why in ((["--bound"], "names its devices"), (["--device", "240ac4000abc"], "add --bound")):
        r = subprocess.run([sys.executable, "-m", "tools.ota", "build", "--out", str(tmp_path / "d"),
                            "--key", str(keys[0]), *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1
