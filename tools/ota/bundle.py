"""Build, sign and verify OTA bundles (the format is firmware/otamanifest.py).

A bundle is a directory, laid out as the update server serves it:
    manifest.vnm          b"VNOTA1\\n" | RSA-3072-PSS signature | manifest JSON
    files/<path>          each file of the app slot (compiled .mpy)
    image.bin             optional MicroPython firmware image
The signature is RSASSA-PSS with SHA-256, MGF1-SHA256 and a 32-byte salt
over magic + JSON - what espsecure's Secure Boot v2 signing uses, so the
same RSA-3072 key pipeline (HSM, offline signer) can serve both.
"""
import ast
import hashlib
import json
import shutil
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tools.devicetree import otamanifest as _device  # the OTA format's one home, on CPython
from tools.devicetree import stage, tree_version
from tools.flash import APP_DESC_MAGIC  # the ESP image format's one home on the host
from tools.paths import ROOT

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
DAY = 86400


class BundleError(Exception):
    pass


def hw_model():
    """firmware/ota.HW_MODEL, read from its source: importing firmware.ota
    would need the chip's esp32 module."""
    tree = ast.parse((ROOT / "firmware" / "ota.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["HW_MODEL"]:
            return ast.literal_eval(node.value)
    raise BundleError("firmware/ota.py defines no HW_MODEL")


def keygen(out_dir):
    """A new RSA-3072 signing key: ota_private.pem (0600) and ota_public.pem."""
    from tools.provision.site import write_private
    d = Path(out_dir)
    from tools.provision.site import _private_dir
    _private_dir(d)  # the signing key's folder: owner-only
    priv = d / "ota_private.pem"
    if priv.exists():
        raise BundleError("%s exists: refusing to replace a signing key" % priv)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    write_private(priv, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    (d / "ota_public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, d / "ota_public.pem"


def load_private(path):
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 3072:
        raise BundleError("%s: the OTA signing key must be RSA-3072" % path)
    return key


def load_public(path):
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 3072:
        raise BundleError("%s: the OTA key must be RSA-3072" % path)
    return key


def app_files():
    """The app slot's files from the current tree, compiled: {path: bytes}.
    Staged in a temporary folder of this call's own, so builds (make
    ota-bundle, make sim, make test) may run at once in one checkout."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vitalnode-ota-stage-") as d:
        tree = stage(Path(d) / "stage")
    return {p: b for p, b in tree.items() if p.split("/")[0] in ("firmware", "lib")}


def check_image(img, name="image"):
    """Refuse what the node's bootloader would refuse (esp_image_verify:
    header, chip, checksum, appended SHA-256), read by esptool, and an
    image that is not an app (a bootloader, or MicroPython's combined
    .bin for offset 0x1000: use the .app-bin or build's micropython.bin)."""
    from esptool.bin_image import LoadFirmwareImage
    try:
        im = LoadFirmwareImage("esp32", img)
    except Exception as e:  # noqa: BLE001 - esptool's FatalError and struct errors on short input
        raise BundleError("%s is not an ESP32 app image (%s)" % (name, e))
    if getattr(im, "chip_id", 0) != 0:
        raise BundleError("%s is for another chip (chip id %d), not the ESP32" % (name, im.chip_id))
    if im.checksum != im.calculate_checksum():
        raise BundleError("%s: checksum does not match (a damaged image)" % name)
    if im.append_digest and im.stored_digest != im.calc_digest:
        raise BundleError("%s: SHA-256 digest does not match (a damaged image)" % name)
    seg = im.segments[0].data if im.segments else b""
    if len(seg) < 4 or int.from_bytes(seg[:4], "little") != APP_DESC_MAGIC:
        raise BundleError("%s is not an app image (a bootloader, or the combined .bin for "
                          "offset 0x1000? use MicroPython's .app-bin)" % name)


def build(out, key_path, version=None, counter=0, hw=None, days=90, bound=False,
          image=None, files=None, now=None, log=print, devices=()):
    """Write a signed bundle to directory `out`; returns the manifest dict.
    bound: only `devices` (device ids, named inside the signed manifest)
    may install it."""
    otamanifest = _device()
    devices = sorted(set(devices or ()))
    if bound and not devices:
        raise BundleError("a bound bundle names its devices (--device ID, repeatable; "
                          "make ota-bundle BOUND=1 DEVICES='id ...')")
    if devices and not bound:
        raise BundleError("--device is for a bound bundle (--bound)")
    from tools.provision.keys import check_device_id
    for dev in devices:
        try:
            check_device_id(dev)
        except ValueError as e:
            raise BundleError("--device %r: %s" % (dev, e))
    key = load_private(key_path)
    files = app_files() if files is None else files
    now = int(time.time() if now is None else now)
    man = {"format": 1, "product": otamanifest.PRODUCT, "hw": hw or hw_model(),
           "version": version or tree_version(), "counter": int(counter), "created": now,
           "expires": now + int(days * DAY), "bound": bool(bound),
           **({"devices": devices} if bound else {}),
           "max_file": max(len(b) for b in files.values()),
           "max_total": sum(len(b) for b in files.values()),
           "files": [{"path": p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                     for p, b in sorted(files.items())]}
    img = Path(image).read_bytes() if image else None
    if img is not None:
        check_image(img, image)
        man["image"] = {"size": len(img), "sha256": hashlib.sha256(img).hexdigest()}
    body = json.dumps(man, separators=(",", ":"), sort_keys=True).encode()
    sig = key.sign(otamanifest.MAGIC + body, PSS, hashes.SHA256())
    env = otamanifest.MAGIC + sig + body
    # the device's own rules, before anything is written
    n = key.public_key().public_numbers().n
    try:
        otamanifest.open_signed(env, n)
    except otamanifest.OtaError as e:
        raise BundleError(str(e))
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "files").mkdir(parents=True)
    for i, (p, b) in enumerate(sorted(files.items()), 1):
        dest = out / "files" / p
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b)
        log("  [%d/%d] %s (%d bytes)" % (i, len(files), p, len(b)))
    if img is not None:
        (out / "image.bin").write_bytes(img)
        log("  image.bin (%d bytes)" % len(img))
    (out / "manifest.vnm").write_bytes(env)
    log("bundle %s: version %s, counter %d, %d files, %d bytes, expires in %g days, signed"
        % (out, man["version"], man["counter"], len(files), man["max_total"], days))
    return man


def verify(bundle_dir, pubkey_path, log=print):
    """Check a bundle as a node would: signature (with cryptography and with
    the device code), the manifest rules, every file's size and hash."""
    otamanifest = _device()
    d = Path(bundle_dir)
    env = (d / "manifest.vnm").read_bytes()
    pub = load_public(pubkey_path)
    ml = len(otamanifest.MAGIC)
    try:
        pub.verify(env[ml:ml + 384], env[:ml] + env[ml + 384:], PSS, hashes.SHA256())
    except Exception:  # noqa: BLE001 - whatever stops the check, the bundle is refused
        raise BundleError("signature does not verify with %s" % pubkey_path)
    try:
        m = otamanifest.open_signed(env, pub.public_numbers().n)
    except otamanifest.OtaError as e:
        raise BundleError(str(e))
    for f in m.each_file():
        p = d / "files" / f["path"]
        if not p.is_file():
            raise BundleError("%s missing" % f["path"])
        b = p.read_bytes()
        if len(b) != f["size"] or hashlib.sha256(b).hexdigest() != f["sha256"]:
            raise BundleError("%s does not match its signed size/hash" % f["path"])
    if m.image:
        b = (d / "image.bin").read_bytes()
        if hashlib.sha256(b).hexdigest() != m.image["sha256"]:
            raise BundleError("image.bin does not match its signed hash")
    log("bundle %s verifies: version %s, counter %d, hw %s, %d files, expires %s%s"
        % (d, m.version, m.counter, m.hw, m.nfiles,
           time.strftime("%Y-%m-%d", time.gmtime(m.expires)),
           ", bound to %s" % " ".join(m.devices) if m.bound else ""))
    return m
