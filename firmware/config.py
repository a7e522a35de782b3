"""The node's configuration: one JSON file, "config.json" at the root of
its flash, written by the provisioning tool and validated on every boot.

    from firmware import config
    try:
        cfg = config.load(keystore.device_id())
    except config.ConfigError as e:
        print(e)          # "config: wifi.password: ..." - the node stays safe

Schema, version 1 (every field is checked; an unknown field is an error,
so a misspelt optional field cannot silently fall back to a default):
    version     1
    device_id   this node's ID: the chip's MAC as 12 lower-case hex digits,
                nothing else (check_device_id; a config copied from another
                node is refused)
    wifi        {"ssid": 1-32 bytes, "password": "" (open) or 8-63 chars}
    broker      {"host": DNS name or IPv4, "port": 1-65535, "addr": IPv4
                (optional)}: with addr the node connects there and never
                resolves `host` (DNS blocks the sampler's timer on the chip:
                docs/timing.md); the certificate is checked against `host`
    ca_cert     PEM text of the CA that signs the broker's certificate
    ota_pubkey  {"n": 768 hex digits (RSA-3072 modulus), "e": 65537}
    alerts      optional: thresholds by name (lib/alertcfg.py DEFAULTS)
    mains_hz    optional: 50 (default) or 60, the ECG mains notch
    power       optional: {"save": true, "uplink_s": 60, "cpu_mhz": 160,
                "led_floor": true, "retry_max_s": 180} (docs/power.md):
                save - light sleep between FIFO drains and the radio off
                between uplink batches; uplink_s - vitals are sent every
                uplink_s (10-60 s; alerts at once); retry_max_s - with save,
                batches that cannot connect space out, doubling, to at
                most this (uplink_s-900 s; not while an alert waits);
                cpu_mhz - the clock (80, 160 or 240; a radio session runs
                at 160 or more, so 80 only with save);
                led_floor - the LEDs at the lowest drive whose pulse meets
                the SpO2 floor (firmware/detect.py), false: at 50 % of the
                ADC's range as before
    battery     optional: {"adc_pin": 35, "divider": 2.0, "capacity_mah": 500}
                (docs/power.md "Battery"; absent: no battery monitor, as on
                a bench supply): adc_pin - the GPIO the cell's divider feeds,
                an ADC1 pin (32-39: ADC2 reads nothing while Wi-Fi is on);
                divider - cell voltage / pin voltage, 1.75-10 (100k/100k:
                2.0; below 1.75 a full cell is beyond the ADC's range);
                capacity_mah - the cell's rated capacity, 50-10000 (the
                host's battery_hours; the node reads percent off the voltage)

Guarantee: load() returns a config that passed every check, or raises
ConfigError whose text names the field; it never raises anything else.
The host validates with this same module before writing (tools/provision).
"""
import binascii
import json
import sys

from micropython import const

PATH = "config.json"
VERSION = const(1)
MAX_BYTES = const(16384)  # a real config is ~2 KB; refuse to parse junk
_FIELDS = ("version", "device_id", "wifi", "broker", "ca_cert", "ota_pubkey", "alerts",
           "mains_hz", "power", "battery")
_REQUIRED = ("version", "device_id", "wifi", "broker", "ca_cert", "ota_pubkey")
_HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"


class ConfigError(Exception):
    pass


def _bad(field, why):
    """The ConfigError for `field`; the caller raises it (so a reader, and
    the type checker, see that the path ends there)."""
    return ConfigError("config: %s: %s" % (field, why))


def _obj(d, field, keys):
    if not isinstance(d, dict):
        raise _bad(field, "must be an object")
    for k in d:
        if k not in keys:
            raise _bad(field, "unknown field %r" % (k,))
    for k in keys:
        if k not in d:
            raise _bad(field + "." + k, "missing")
    return d


def _text(v, field, lo, hi):
    if not isinstance(v, str):
        raise _bad(field, "must be a string")
    n = len(v.encode())
    if not lo <= n <= hi:
        raise _bad(field, "must be %d-%d bytes long, got %d" % (lo, hi, n))
    return v


def check_device_id(did, field="device_id"):
    """`did` if it is a device id - the chip's 6-byte MAC as 12 lower-case
    hex digits (firmware/devid: the one form) - else ConfigError. The
    host's provisioning, registry and broker use this check too."""
    from firmware.devid import why_not
    why = why_not(did)
    if why is not None:
        raise _bad(field, why)
    return did


def _wifi(w):
    _obj(w, "wifi", ("ssid", "password"))
    _text(w["ssid"], "wifi.ssid", 1, 32)
    pw = _text(w["password"], "wifi.password", 0, 63)
    if 0 < len(pw) < 8:
        raise _bad("wifi.password", "must be empty (open network) or 8-63 characters (WPA2)")


def _ipv4(v):
    p = v.split(".")
    return len(p) == 4 and all(0 < len(x) <= 3 and x.isdigit() and int(x) < 256 for x in p)


def _broker(b):
    if isinstance(b, dict) and "addr" in b:
        b = dict(b)
        addr = b.pop("addr")
        if not isinstance(addr, str) or not _ipv4(addr):
            raise _bad("broker.addr", "must be an IPv4 address such as 10.0.0.5")
    _obj(b, "broker", ("host", "port"))
    host = _text(b["host"], "broker.host", 1, 253)
    for c in host:
        if c not in _HOST_CHARS:
            raise _bad("broker.host", "%r is not a host name or IPv4 address" % (host,))
    if host[0] in ".-" or host[-1] in ".-" or ".." in host:
        raise _bad("broker.host", "%r is not a host name or IPv4 address" % (host,))
    p = b["port"]
    if not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 65536:
        raise _bad("broker.port", "must be an integer 1-65535")


def pem_der(pem, field="ca_cert"):
    """DER bytes of the single CERTIFICATE in `pem` (ConfigError if not)."""
    _text(pem, field, 64, 8192)
    head = "-----BEGIN CERTIFICATE-----"
    tail = "-----END CERTIFICATE-----"
    a = pem.find(head)
    b = pem.find(tail)
    if a < 0 or b < a or pem.find(head, a + 1) >= 0:
        raise _bad(field, "must be one PEM certificate (BEGIN/END CERTIFICATE)")
    try:
        der = binascii.a2b_base64(pem[a + len(head):b].replace("\n", "").replace("\r", "")
                                  .encode())
    except ValueError:  # on the chip; CPython's binascii.Error is a ValueError
        raise _bad(field, "certificate body is not base64")
    if len(der) < 64 or der[0] != 0x30:
        raise _bad(field, "certificate body is not DER")
    return der


def _ota_key(k):
    _obj(k, "ota_pubkey", ("n", "e"))
    n = k["n"]
    if not isinstance(n, str) or len(n) != 768:
        raise _bad("ota_pubkey.n", "must be the RSA-3072 modulus as 768 hex digits")
    try:
        top = int(n[:2], 16)
        low = int(n[-2:], 16)
        binascii.unhexlify(n)
    except ValueError:
        raise _bad("ota_pubkey.n", "must be hex digits")
    if top < 0x80 or not low & 1:
        raise _bad("ota_pubkey.n", "is not a 3072-bit RSA modulus")
    if k["e"] != 65537:
        raise _bad("ota_pubkey.e", "must be 65537")


POWER = {"save": True, "uplink_s": 60, "cpu_mhz": 160, "led_floor": True,
         "retry_max_s": 180}  # defaults (docs/power.md)


def _block(name, given, defaults):
    """Block `name` of the config: `given` over a copy of its defaults,
    every field one of theirs."""
    if not isinstance(given, dict):
        raise _bad(name, "must be an object")
    out = dict(defaults)
    for k in given:
        if k not in out:
            raise _bad(name, "unknown field %r" % (k,))
        out[k] = given[k]
    return out


def _power(p):
    """The power block with its defaults filled in."""
    out = _block("power", p, POWER)
    for k in ("save", "led_floor"):
        if not isinstance(out[k], bool):
            raise _bad("power." + k, "must be true or false")
    u = out["uplink_s"]
    if not isinstance(u, int) or isinstance(u, bool) or not 10 <= u <= 60:
        raise _bad("power.uplink_s", "must be an integer 10-60 (vitals reach the ward within a minute)")
    r = out["retry_max_s"]
    if not isinstance(r, int) or isinstance(r, bool) or not u <= r <= 900:
        raise _bad("power.retry_max_s", "must be an integer from power.uplink_s (%d) to 900" % u)
    if out["cpu_mhz"] not in (80, 160, 240) or isinstance(out["cpu_mhz"], bool):
        raise _bad("power.cpu_mhz", "must be 80, 160 or 240")
    if out["cpu_mhz"] < 160 and not out["save"]:
        raise _bad("power.cpu_mhz", "80 needs power.save true (the radio, always on "
                   "without it, runs at 160 or more)")
    return out


BATTERY = {"adc_pin": 35, "divider": 2.0, "capacity_mah": 500}  # defaults (docs/power.md)
DIVIDER_MIN = 1.75  # 4.2 V (a full LiPo) / 1.75 = 2.4 V: inside 11 dB's 150-2450 mV


def _battery(b):
    """The battery block with its defaults filled in."""
    out = _block("battery", b, BATTERY)
    p = out["adc_pin"]
    if not isinstance(p, int) or isinstance(p, bool) or not 32 <= p <= 39:
        raise _bad("battery.adc_pin", "must be an ADC1 GPIO, 32-39 (ADC2 cannot read while "
                   "Wi-Fi is on), got %r" % (p,))
    d = out["divider"]
    if not isinstance(d, (int, float)) or isinstance(d, bool) or not DIVIDER_MIN <= d <= 10:
        raise _bad("battery.divider", "must be a number 1.75-10 (cell voltage / pin voltage; "
                   "100k/100k is 2.0), got %r" % (d,))
    out["divider"] = float(d)
    c = out["capacity_mah"]
    if not isinstance(c, int) or isinstance(c, bool) or not 50 <= c <= 10000:
        raise _bad("battery.capacity_mah", "must be an integer 50-10000, got %r" % (c,))
    return out


def validate(cfg, device_id=None):
    """Checked copy of `cfg` with optional fields filled in."""
    if not isinstance(cfg, dict):
        raise _bad("(top)", "must be a JSON object")
    for k in cfg:
        if k not in _FIELDS:
            raise _bad(k, "unknown field")
    for k in _REQUIRED:
        if k not in cfg:
            raise _bad(k, "missing")
    if cfg["version"] != VERSION:
        raise _bad("version", "must be %d (this firmware), got %r" % (VERSION, cfg["version"]))
    did = check_device_id(cfg["device_id"])
    if device_id is not None and did != device_id:
        raise _bad("device_id", "is %s but this node is %s (config of another node)" % (did, device_id))
    _wifi(cfg["wifi"])
    _broker(cfg["broker"])
    pem_der(cfg["ca_cert"])
    _ota_key(cfg["ota_pubkey"])
    out = dict(cfg)
    if not isinstance(cfg.get("alerts", {}), dict):
        raise _bad("alerts", "must be an object")
    import alertcfg  # lazily: only the boot path pays for it
    try:
        out["alerts"] = alertcfg.check(cfg.get("alerts"))
    except ValueError as e:
        raise ConfigError("config: " + str(e))
    finally:
        sys.modules.pop("alertcfg", None)  # the running node need not hold it
    mains = cfg.get("mains_hz", 50)
    if mains not in (50, 60) or isinstance(mains, bool):
        raise _bad("mains_hz", "must be 50 or 60")
    out["mains_hz"] = mains
    out["power"] = _power(cfg.get("power", {}))
    out["battery"] = _battery(cfg["battery"]) if "battery" in cfg else None
    return out


def load(device_id=None):
    """The node's validated configuration (ConfigError if missing or bad)."""
    from firmware import storage
    try:
        size = storage.fs().stat(PATH)[6]
    except OSError:
        raise ConfigError("config: %s is missing (provision the node)" % PATH)
    if size > MAX_BYTES:
        raise ConfigError("config: %s is %d bytes, more than %d" % (PATH, size, MAX_BYTES))
    try:
        text = storage.read_text(PATH)
    except (OSError, ValueError) as e:  # ValueError: not UTF-8
        raise ConfigError("config: %s cannot be read (%s)" % (PATH, e))
    try:
        cfg = json.loads(text)
    except ValueError:
        raise ConfigError("config: %s is not valid JSON" % PATH)
    return validate(cfg, device_id)
