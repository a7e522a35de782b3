"""The node's config file: a valid one loads with defaults filled in; every
bad or missing value is a ConfigError naming the field; replacing it is
atomic under power loss."""
import binascii
import json

import simboard
from devtest import raises
from simflash import PowerLoss

from firmware import config, keystore, storage


def cert_pem():
    der = b"\x30\x82\x01\x0a" + bytes(range(256))  # PEM shape is all the node checks
    b64 = binascii.b2a_base64(der).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def good():
    return {"version": 1, "device_id": keystore.device_id(),
            "wifi": {"ssid": "ward-3", "password": "correct horse"},
            "broker": {"host": "mqtt.example.org", "port": 8883},
            "ca_cert": cert_pem(), "ota_pubkey": {"n": "c5" * 384, "e": 65537}}


def write(cfg):
    storage.write_atomic(config.PATH, cfg if isinstance(cfg, str) else json.dumps(cfg))


def error(cfg):
    write(cfg)
    return str(raises(config.ConfigError, config.load, keystore.device_id()))


def test_a_valid_config_loads_with_defaults_filled_in():
    write(good())
    c = config.load(keystore.device_id())
    assert c["broker"]["port"] == 8883 and c["mains_hz"] == 50
    assert c["alerts"]["hr_low"] == 40 and c["alerts"]["spo2_low"] == 90  # lib/alerts DEFAULTS
    cfg = good()
    cfg["alerts"] = {"hr_low": 45}
    cfg["mains_hz"] = 60
    cfg["wifi"]["password"] = ""  # an open network is allowed
    write(cfg)
    c = config.load(keystore.device_id())
    assert c["alerts"]["hr_low"] == 45 and c["alerts"]["hr_high"] == 150 and c["mains_hz"] == 60


def test_power_defaults_save_power_and_send_vitals_every_minute():
    write(good())
    assert config.load(keystore.device_id())["power"] == {"save": True, "uplink_s": 60, "cpu_mhz": 160,
                                                          "led_floor": True, "retry_max_s": 180}
    cfg = good()
    cfg["power"] = {"save": False, "uplink_s": 20, "led_floor": False, "retry_max_s": 20}
    write(cfg)
    assert config.load(keystore.device_id())["power"] == {"save": False, "uplink_s": 20, "cpu_mhz": 160,
                                                          "led_floor": False, "retry_max_s": 20}
    for bad in (19, 901, "180", 180.0):  # never sooner than the batches, at most 15 min
        cfg["power"] = {"uplink_s": 20, "retry_max_s": bad}
        write(cfg)
        e = raises(config.ConfigError, config.load, keystore.device_id())
        assert "power.retry_max_s" in str(e) and "20" in str(e)
    cfg["power"] = {"led_floor": 1}  # a typo'd JSON value is refused, not taken as true
    write(cfg)
    e = raises(config.ConfigError, config.load, keystore.device_id())
    assert "power.led_floor" in str(e)
    # 80 MHz only with power saving: the always-on radio runs at 160 or more
    cfg["power"] = {"save": False, "cpu_mhz": 80}
    write(cfg)
    e = raises(config.ConfigError, config.load, keystore.device_id())
    assert "power.cpu_mhz" in str(e) and "power.save" in str(e)
    cfg["power"] = {"save": True, "cpu_mhz": 80}
    write(cfg)
    assert config.load(keystore.device_id())["power"]["cpu_mhz"] == 80


def test_no_battery_block_means_no_monitor_and_an_empty_one_takes_the_defaults():
    write(good())
    assert config.load(keystore.device_id())["battery"] is None  # a bench supply: nothing to read
    cfg = good()
    cfg["battery"] = {}
    write(cfg)
    # Adafruit HUZZAH32's wiring: VBAT through 100k/100k to GPIO35 (docs/power.md)
    assert config.load(keystore.device_id())["battery"] == {"adc_pin": 35, "divider": 2.0,
                                                            "capacity_mah": 500}
    cfg["battery"] = {"adc_pin": 34, "divider": 3, "capacity_mah": 1200}
    write(cfg)
    b = config.load(keystore.device_id())["battery"]
    assert b == {"adc_pin": 34, "divider": 3.0, "capacity_mah": 1200}
    assert isinstance(b["divider"], float)


def test_the_broker_may_carry_its_address_so_the_node_never_resolves():
    cfg = good()
    cfg["broker"]["addr"] = "10.0.0.5"
    write(cfg)
    c = config.load(keystore.device_id())
    assert c["broker"] == {"host": "mqtt.example.org", "port": 8883, "addr": "10.0.0.5"}


def test_missing_or_unparsable_config_is_a_clear_error():
    e = str(raises(config.ConfigError, config.load))
    assert "config.json is missing" in e
    assert "not valid JSON" in error('{"version": 1,')
    assert "must be a JSON object" in error("[1, 2]")
    write("x" * (config.MAX_BYTES + 1))
    assert "more than" in str(raises(config.ConfigError, config.load))


def _mutated(path, value):
    cfg = good()
    d = cfg
    for k in path[:-1]:
        d = d.setdefault(k, {})  # an optional block starts empty
    if value is KeyError:
        del d[path[-1]]
    else:
        d[path[-1]] = value
    return cfg


def test_every_bad_value_names_its_field():
    cases = [
        (("version",), 2, "version"),
        (("device_id",), "240ac4ffffff", "device_id"),
        (("wifi",), KeyError, "wifi"),
        (("wifi", "ssid"), "", "wifi.ssid"),
        (("wifi", "ssid"), "x" * 33, "wifi.ssid"),
        (("wifi", "password"), "short", "wifi.password"),
        (("wifi", "pasword"), "typo", "wifi"),
        (("broker", "host"), "bad host", "broker.host"),
        (("broker", "host"), ".example.org", "broker.host"),
        (("broker", "port"), 0, "broker.port"),
        (("broker", "port"), "8883", "broker.port"),
        (("broker", "port"), KeyError, "broker.port"),
        (("broker", "addr"), "10.0.0", "broker.addr"),
        (("broker", "addr"), "10.0.0.256", "broker.addr"),
        (("broker", "addr"), "mqtt.example.org", "broker.addr"),
        (("broker", "addr"), "::1", "broker.addr"),
        (("broker", "addr"), 167772165, "broker.addr"),
        (("ca_cert",), "not a certificate" * 5, "ca_cert"),
        (("ca_cert",), cert_pem().replace("MIIB", "M*IB"), "ca_cert"),
        (("ota_pubkey", "n"), "c5" * 128, "ota_pubkey.n"),
        (("ota_pubkey", "n"), "c5" * 383 + "c4", "ota_pubkey.n"),  # even: not a modulus
        (("ota_pubkey", "n"), "zz" * 384, "ota_pubkey.n"),
        (("ota_pubkey", "e"), 3, "ota_pubkey.e"),
        (("alerts",), {"hr_low": 5}, "hr_low"),
        (("alerts",), {"hr_lo": 40}, "hr_lo"),
        (("alerts",), [40], "alerts"),
        (("mains_hz",), 55, "mains_hz"),
        (("power",), [], "power"),
        (("power",), {"sleep": True}, "sleep"),
        (("power", "save"), 1, "power.save"),
        (("power", "uplink_s"), 61, "power.uplink_s"),
        (("power", "uplink_s"), 9, "power.uplink_s"),
        (("power", "uplink_s"), 30.0, "power.uplink_s"),
        (("power", "cpu_mhz"), 40, "power.cpu_mhz"),
        (("power", "cpu_mhz"), True, "power.cpu_mhz"),
        (("battery",), None, "battery"),
        (("battery",), [35], "battery"),
        (("battery",), {"pin": 35}, "pin"),
        (("battery", "adc_pin"), 4, "battery.adc_pin"),  # ADC2: reads nothing while Wi-Fi is on
        (("battery", "adc_pin"), 31, "battery.adc_pin"),
        (("battery", "adc_pin"), 40, "battery.adc_pin"),
        (("battery", "adc_pin"), "35", "battery.adc_pin"),
        (("battery", "adc_pin"), True, "battery.adc_pin"),
        (("battery", "divider"), 1.0, "battery.divider"),  # a full cell beyond the ADC's range
        (("battery", "divider"), 0.5, "battery.divider"),
        (("battery", "divider"), 11, "battery.divider"),
        (("battery", "divider"), "2", "battery.divider"),
        (("battery", "divider"), True, "battery.divider"),
        (("battery", "capacity_mah"), 0, "battery.capacity_mah"),
        (("battery", "capacity_mah"), 500.0, "battery.capacity_mah"),
        (("battery", "capacity_mah"), 20000, "battery.capacity_mah"),
        (("brokr",), {}, "brokr"),
    ]
    for path, value, field in cases:
        e = error(_mutated(path, value))
        assert e.startswith("config: ") and field in e, (path, value, e)


ATTACKER_IDS = ["gateway", "operator", "+", "#", "vn/x", "../x", "240ac4000001a", "240AC4000001",
                "240ac400000", "", "240ac400\x0001", "240ac4+00001", "240ac4#00001", " 240ac400001",
                "240ac400001\n", "24:0a:c4:00:00:01", "\uff12\uff14" * 6, "$SYS/broker", None, 240]


def test_a_device_id_is_exactly_twelve_lower_case_hex_digits():
    assert config.check_device_id("240ac4c0ffee") == "240ac4c0ffee"
    assert config.check_device_id(keystore.device_id()) == keystore.device_id()
    for bad in ATTACKER_IDS:
        e = str(raises(config.ConfigError, config.check_device_id, bad))
        assert e.startswith("config: device_id: must be the chip's MAC"), (bad, e)
        cfg = good()
        cfg["device_id"] = bad
        assert "device_id" in error(cfg), bad


def test_replacing_the_config_survives_power_loss_at_every_flash_op():
    write(good())
    new = good()
    new["broker"]["port"] = 1883
    b = simboard.board
    ops0 = b.faults.ops
    write(new)
    n_ops = b.faults.ops - ops0
    assert n_ops >= 3  # create, write, rename at least
    for k in range(1, n_ops + 1):
        write(good())
        b.faults.arm(k)
        raises(PowerLoss, write, new)
        b.power_cycle()
        port = config.load(keystore.device_id())["broker"]["port"]
        assert port in (8883, 1883), k  # the old file or the new one, never a mix
