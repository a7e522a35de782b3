"""Site configuration -> one node's config.json, validated by the firmware's
own validator (firmware/config.py, run here under CPython) before anything
is written to a node.

A site file is JSON, shared by the nodes of one deployment:
    {"wifi": {"ssid": "ward-3", "password": "..."},
     "broker": {"host": "mqtt.example.org", "port": 8883},
     "ca_cert_file": "ca.pem",            # CA of the broker's certificate
     "ota_pubkey_file": "ota_public.pem", # RSA-3072 public key (OTA signer)
     "alerts": {"hr_low": 45},            # optional, lib/alerts.py names
     "mains_hz": 50,                      # optional, 50 or 60
     "power": {"uplink_s": 60},           # optional, firmware/config.py
     "battery": {"adc_pin": 35, "divider": 2.0},   # optional, firmware/config.py
     "lockdown": false}                   # optional, see firmware/lockdown.py
Relative file names are relative to the site file.

Without a site file the tool uses a development site (dev_site()): a CA
and an OTA key generated once next to the registry, a broker on
localhost:8883. It says so, because a development CA is not a product CA.
"""
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_SITE_FIELDS = {"wifi", "broker", "ca_cert_file", "ota_pubkey_file", "alerts", "mains_hz",
                "power", "battery", "lockdown"}


class SiteError(Exception):
    pass


def _firmware_config():
    from tools import devicecode
    devicecode.install()
    from firmware import config
    return config


def load_site(path):
    path = Path(path)
    try:
        site = json.loads(path.read_text())
    except FileNotFoundError:
        raise SiteError("site config %s: no such file" % path)
    except (ValueError, UnicodeDecodeError) as e:
        raise SiteError("site config %s: not valid JSON (%s)" % (path, e))
    if not isinstance(site, dict):
        raise SiteError("site config %s: must be a JSON object" % path)
    unknown = set(site) - _SITE_FIELDS
    if unknown:
        raise SiteError("site config %s: unknown field(s) %s" % (path, ", ".join(sorted(unknown))))
    for f in ("wifi", "broker", "ca_cert_file", "ota_pubkey_file"):
        if f not in site:
            raise SiteError("site config %s: %s: missing" % (path, f))
    if not isinstance(site.get("lockdown", False), bool):
        raise SiteError("site config %s: lockdown: must be true or false" % path)
    site["_dir"] = path.parent
    return site


def _read(site, field):
    p = Path(site[field])
    if not p.is_absolute():
        p = site["_dir"] / p
    try:
        return p.read_bytes()
    except OSError as e:
        raise SiteError("%s: cannot read %s (%s)" % (field, p, e.strerror))


def ota_pubkey(pem):
    """{"n": hex, "e": 65537} of an RSA-3072 public key PEM."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise SiteError("ota_pubkey_file: not a PEM public key (%s)" % e)
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 3072:
        raise SiteError("ota_pubkey_file: must be an RSA-3072 public key (the OTA signing scheme)")
    nums = key.public_numbers()
    return {"n": "%0768x" % nums.n, "e": nums.e}


def device_config(site, device_id):
    """The node's config.json content, checked by the firmware's validator."""
    ca = _read(site, "ca_cert_file").decode("ascii", "replace")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.encode())
    except ValueError as e:
        raise SiteError("ca_cert_file: not a PEM certificate (%s)" % e)
    key = ca_cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or not 2048 <= key.key_size <= 4096:
        raise SiteError("ca_cert_file: the CA's key must be RSA (2048 to 4096 bits): the node "
                        "checks its signature in one call that stops the sampler, and an ECDSA "
                        "check takes ~0.8 s on the ESP32, longer than the sensor's FIFO holds "
                        "(docs/timing.md)")
    cfg = {"version": 1, "device_id": device_id, "wifi": site["wifi"], "broker": site["broker"],
           "ca_cert": ca, "ota_pubkey": ota_pubkey(_read(site, "ota_pubkey_file"))}
    for opt in ("alerts", "mains_hz", "power", "battery"):
        if opt in site:
            cfg[opt] = site[opt]
    config = _firmware_config()
    try:
        config.validate(cfg, device_id)
    except config.ConfigError as e:
        raise SiteError(str(e))
    return cfg


def rsa_cert_file(pem):
    """True if file `pem` holds a PEM certificate with an RSA key; False if
    it is missing, unreadable, not a certificate or an EC one (a site or a
    broker certificate from before the nodes' TLS became RSA-only: made anew).
    One home for the check (tools/broker.py uses it for its server cert)."""
    try:
        return isinstance(x509.load_pem_x509_certificate(pem.read_bytes()).public_key(),
                          rsa.RSAPublicKey)
    except (OSError, ValueError):
        return False


def default_dev_site_dir():
    """The one development site of a user's set-up: beside the default
    registry (the folder of $VITALNODE_REGISTRY, else the user's data
    folder), where `make provision` and `make ward` make it; the OTA tools
    sign with its key, so a provisioned node accepts their bundles."""
    from tools.provision.registry import default_path
    return default_path().parent / "dev-site"


def dev_site(directory):
    """A development site in `directory` (made once): a CA, an OTA key pair
    and site.json pointing at them. Returns the site.json path."""
    d = Path(directory)
    site = d / "site.json"
    if site.exists() and rsa_cert_file(d / "ca.pem"):
        _private_dir(d)  # a site made before these were owner-only becomes so
        for name in ("site.json", "ca.key", "ota_private.pem"):
            if (d / name).exists():
                (d / name).chmod(0o600)
        return site  # (a development site from before the CA became RSA is made anew)
    _private_dir(d)
    # RSA: the node verifies the CA's signature inside the TLS handshake, in
    # one C call that lets no callback run (docs/timing.md)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "VitalNode development CA")])
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(days=1))
            .not_valid_after(t + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256()))
    ota = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    write_private(d / "ca.key", ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (d / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(d / "ota_private.pem", ota.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (d / "ota_public.pem").write_bytes(ota.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    tmp = d / "site.json.tmp"
    write_private(tmp, (json.dumps({
        "wifi": {"ssid": "vitalnode-dev", "password": "vitalnode-dev-net"},
        "broker": {"host": "localhost", "port": 8883},
        "ca_cert_file": "ca.pem", "ota_pubkey_file": "ota_public.pem"}, indent=2) + "\n").encode())
    tmp.replace(site)
    return site


def make_site(directory, ssid, wifi_password, broker, replace=False):
    """A site for a real network: dev_site()'s CA and OTA key (made once in
    `directory`, reused after), with this WiFi and broker ("host[:port]").
    Checked with the firmware's own validator before it is written. A
    site.json already there is replaced only with `replace` (nodes
    provisioned from it keep its WiFi and broker)."""
    host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "8883")
    if not port.isdigit():
        raise SiteError("broker: %r is not HOST[:PORT]" % broker)
    existing = Path(directory) / "site.json"
    if existing.exists() and not replace:
        raise SiteError("%s exists: refusing to replace it (nodes provisioned from it keep its "
                        "WiFi and broker); to replace it: make site ... FORCE=1 (--force)"
                        % existing)
    path = dev_site(directory)
    s = json.loads(path.read_text())
    s["wifi"] = {"ssid": ssid, "password": wifi_password}
    s["broker"] = {"host": host, "port": int(port)}
    tmp = path.with_suffix(".json.tmp")
    write_private(tmp, (json.dumps(s, indent=2) + "\n").encode())  # the WiFi password
    try:
        device_config(load_site(tmp), "000000000000")  # the node's rules, before anything
    except SiteError:
        tmp.unlink()
        path.unlink()  # no site.json left: a corrected `make site` is not refused as a replacement
        raise
    tmp.replace(path)
    return path


def _private_dir(d):
    """Make folder `d` (and parents) if needed; `d` itself owner-only (0700)."""
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)


def write_private(path, data):
    """Write bytes to a file only its owner can read (keys, key images)."""
    import os
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
