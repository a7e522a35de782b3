"""Host side of the device keys: the root key comes from the host's CSPRNG
(secrets), the purpose sub-keys are derived exactly as firmware/keystore.py
does - here with the `cryptography` package's HKDF-Expand, an implementation
independent of the firmware's, so tests cross-check the two.

The root key is never stored on the host: the registry keeps the derived
sub-keys only (telemetry: the gateway verifies frames; broker: the MQTT
password; ota-bind: the update server targets a node; attest: the
challenge-response).
"""
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

PURPOSES = ("telemetry", "broker", "ota-bind", "attest")
KEY_BYTES = 32


def check_device_id(device_id):
    """`device_id` if it is a device id (12 lower-case hex digits, the
    chip's MAC), else ValueError. The rule is the firmware's own
    (firmware/config.check_device_id): one home for the form."""
    from tools import devicecode
    devicecode.install()
    from firmware import config
    try:
        return config.check_device_id(device_id)
    except config.ConfigError as e:
        raise ValueError(str(e).split(": ", 2)[-1])


def is_device_id(name):
    try:
        check_device_id(name)
        return True
    except ValueError:
        return False


def new_root():
    return secrets.token_bytes(KEY_BYTES)


def subkey(root, purpose, device_id):
    info = ("vitalnode/v1/%s/%s" % (purpose, device_id)).encode()
    return HKDFExpand(SHA256(), KEY_BYTES, info).derive(bytes(root))


def subkeys(root, device_id):
    return {p: subkey(root, p, device_id) for p in PURPOSES}


def attest_response(attest_key, device_id, nonce):
    """What a node holding the key answers to `nonce` (keystore.attest)."""
    return hmac.new(attest_key, b"attest" + device_id.encode() + nonce, hashlib.sha256).digest()


def broker_password(broker_key):
    """The node's MQTT password (keystore.broker_password)."""
    return hmac.new(broker_key, b"mqtt-password", hashlib.sha256).hexdigest()
