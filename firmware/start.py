"""The node's start, before the supervisor loop: key, configuration, the
telemetry link and the OTA report. Run once by firmware/app.main(), which
then forgets this module, so the running node holds none of its code.

    ks, cfg = start.identity(wdt, heartbeat_s)
    bat = start.battery(cfg)         # lib/battery.Battery, or None without a battery block
    link, trial = start.link(ks, cfg)
    power = start.power(cfg)   # (INT pin or None, uplink_s, cpu_mhz)

identity() returns the keystore and the validated config (without its
large fields); with no device key or a configuration that fails validation
it never returns: the safe state (the node starts neither the sensor nor
any radio, sends nothing, keeps feeding the watchdog and prints the reason
every heartbeat; the REPL stays usable for provisioning). link() returns
the link (an object with .box .tm .wlan .up, or None when the flash cannot
hold an outbox: the node still monitors and alerts locally) and whether
this boot is an update's trial (it reports what stage0 decided first).
The keystore is not kept: the link holds what it needs (device id,
telemetry MAC, broker password); an OTA update loads the keystore again.
"""
import sys
import time

from micropython import const

_SAFE_TICK_MS = const(500)
_INT_PIN = const(4)  # the sensor's INT (firmware/sensor.py wiring)


class _Link:
    pass


def identity(wdt, heartbeat_s):
    from firmware import keystore
    print("vitalnode: device", keystore.device_id(), "running")
    ks = keystore.load()
    if ks is None:
        _safe_state(wdt, "unprovisioned: no device key", heartbeat_s)
    # (the type checker cannot tell that _safe_state() never returns)
    cfg = _config(wdt, ks.device_id, heartbeat_s)  # pyright: ignore[reportOptionalMemberAccess]
    print("vitalnode: provisioned, key generation %d, broker %s:%d"
          % (ks.gen, cfg["broker"]["host"], cfg["broker"]["port"]))  # pyright: ignore[reportOptionalMemberAccess]
    _unload("keystore")  # the object lives on until link() is done with it
    return ks, cfg


def sampling(wdt, cfg, detector):
    """The sensor, the detector (detector(smp, cfg): app's, which a sensor
    retry uses again) and the timer that drains one into the other: the
    node's largest buffers, made while the heap has room."""
    import gc

    from firmware import sensor
    from firmware.pump import Pump
    gc.collect()
    smp, what = sensor.start()
    print("vitalnode: sensor", what if smp else "fault: " + what)
    if smp is not None:
        _unload("sensor")  # only a retry needs it again
    det = detector(smp, cfg)
    return smp, det, Pump(smp, det, wdt)


def power(cfg):
    """(INT pin or None, uplink_s, cpu_mhz) of the config's power block.
    With power saving: the sensor's INT (FIFO almost full, active low; the
    pull-up holds it high without a sensor) ends a light sleep. The CPU
    runs at cpu_mhz either way (config: 80 only with power saving)."""
    import machine
    pw = cfg["power"]
    pin = None
    if pw["save"]:
        import esp32
        pin = machine.Pin(_INT_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
        esp32.wake_on_ext0(pin, esp32.WAKEUP_ALL_LOW)
    machine.freq(pw["cpu_mhz"] * 1000000)
    return pin, pw["uplink_s"], pw["cpu_mhz"]


def battery(cfg):
    """The battery monitor on config's ADC pin and divider (its ADC1 pin
    read at 11 dB: 150-2450 mV; ports/esp32/machine_adc.c), or None when
    the config has no battery block."""
    b = cfg.pop("battery", None)
    if b is None:
        return None
    from machine import ADC, Pin

    from battery import Battery
    adc = ADC(Pin(b["adc_pin"]))
    adc.atten(ADC.ATTN_11DB)
    return Battery(adc, b["divider"])


def link(ks, cfg):
    lk = _link(ks, cfg)  # before the OTA report, so its security events become frames
    return lk, _ota_report()


def _unload(name):
    import firmware
    sys.modules.pop("firmware." + name, None)
    if hasattr(firmware, name):
        delattr(firmware, name)


def _safe_state(wdt, reason, heartbeat_s):
    """Never returns: the watchdog is fed, nothing else runs."""
    t0 = time.ticks_ms()
    next_beat = 0
    while True:
        wdt.feed()
        up = time.ticks_diff(time.ticks_ms(), t0) // 1000
        if up >= next_beat:
            next_beat += heartbeat_s
            print("vitalnode: SAFE STATE (%s): sensor off, sending nothing, up %d s" % (reason, up))
        time.sleep_ms(_SAFE_TICK_MS)


def _config(wdt, device_id, heartbeat_s):
    """The validated config without its large fields (the uplink and OTA
    reload those), or the safe state."""
    from firmware import config
    try:
        cfg = config.load(device_id)
    except config.ConfigError as e:
        _safe_state(wdt, str(e), heartbeat_s)
    # (the type checker cannot tell that _safe_state() never returns)
    del cfg["ota_pubkey"]  # pyright: ignore[reportPossiblyUnboundVariable]
    _unload("config")  # only the start needs the validator
    _unload("devid")  # (config's device id check)
    return cfg  # pyright: ignore[reportPossiblyUnboundVariable]


def _link(ks, cfg):
    """Telemetry (frames into the outbox) and the uplink (outbox to broker)."""
    import esp32
    import network

    from firmware import outbox, seclog, version
    from firmware.seqno import SeqNo
    from firmware.telemetry import Telemetry
    from firmware.uplink import Uplink
    # link first, then each part as it is made: the node's heap layout (an
    # __init__ taking the parts put the link after them and raised the peak
    # heap by 1.6 KB); the type checker does not follow attributes set this way
    try:
        link = _Link()
        link.box = box = outbox.Outbox()  # pyright: ignore[reportAttributeAccessIssue]
        link.tm = tm = Telemetry(ks, box, SeqNo(esp32.NVS("vn_tel")), version.code())  # pyright: ignore[reportAttributeAccessIssue]
    except OSError as e:  # flash trouble: the node still monitors and alerts locally
        print("vitalnode: telemetry off:", e)
        return None
    finally:
        _unload("version")
    link.wlan = wlan = network.WLAN(network.STA_IF)  # pyright: ignore[reportAttributeAccessIssue]
    link.up = Uplink(ks.device_id, cfg["broker"], cfg.pop("ca_cert"), ks.broker_password(),  # pyright: ignore[reportAttributeAccessIssue]
                     wlan=wlan, wifi=cfg["wifi"], ack_check=tm.ack_seq, on_time=tm.sync_clock)
    seclog.listener = tm.security
    print("vitalnode: outbox holds %d frame(s) from before this boot" % box.depth)
    return link


def _ota_report():
    """Log what stage0 decided; True if this boot is an update's trial."""
    from firmware import otatrial
    pend, last = otatrial.flags()
    if last:
        otatrial.at_start()
    _unload("otatrial")
    sys.modules.pop("stage0", None)  # otatrial's calls import it
    if pend >= 0:
        print("vitalnode: running an update on trial; confirming once healthy")
        return True
    return False
