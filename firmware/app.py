"""The node application: wires the hardware objects to the data path.

It identifies the node, starts the watchdog, loads its key and its
configuration, opens the sensor (retrying every SENSOR_RETRY_S while none
answers) and runs the supervisor loop. A timer (firmware/pump.py) drains
the sensor FIFO and runs detection, so the network can never stall
sampling; the loop feeds the watchdog, turns alert changes (at once),
vitals (every VITALS_S) and status (every STATUS_S) into sealed frames in
the flash outbox (firmware/telemetry.py), lets the uplink publish them
(firmware/uplink.py) and prints a heartbeat.

OTA: on a trial boot (boot.py ran a new slot) the app confirms the update
once it is healthy - the sensor delivers samples and at least
HEALTH_BEATS beats were detected, no earlier than HEALTH_S after start -
and otherwise leaves it unconfirmed, so boot.py's deadline reverts it.
(The health check does not require the broker: an outage during a trial
would otherwise revert a good update.)

Safe state: with no device key ("unprovisioned") or a configuration that
fails validation, the node starts neither the sensor nor any radio, sends
nothing, keeps feeding the watchdog (no crash loop) and prints the reason
every HEARTBEAT_S; the REPL stays usable for provisioning (unless locked).

Guarantees: the watchdog is fed only from these loops, so a hang resets
the node within WDT_TIMEOUT_MS; on a locked-down node an error resets the
node instead of leaving it at the REPL.
"""
import gc
import sys
import time

import machine
from micropython import const

WDT_TIMEOUT_MS = const(10000)
TICK_MS = const(50)  # main loop period; the sensor is drained by firmware/pump.py's timer
VITALS_S = const(5)
STATUS_S = const(60)
HEARTBEAT_S = const(10)
SENSOR_RETRY_S = const(10)
_SAFE_TICK_MS = const(500)
HEALTH_S = const(30)
HEALTH_BEATS = const(10)


def _detector(smp, cfg):
    from firmware.detect import Detect
    if smp is None:
        return None
    return Detect(smp, mains=cfg["mains_hz"], thresholds=cfg["alerts"])


def _unload(name):
    """Forget firmware.<name> so its code leaves the heap (lazy re-import)."""
    import firmware
    sys.modules.pop("firmware." + name, None)
    if hasattr(firmware, name):
        delattr(firmware, name)


def _unload_trial():
    """Forget firmware.otatrial and the `boot` module its calls import
    (boot.py ran already; its code need not stay in the heap)."""
    _unload("otatrial")
    sys.modules.pop("boot", None)


def _safe_state(wdt, reason):
    """Never returns: the watchdog is fed, nothing else runs."""
    t0 = time.ticks_ms()
    next_beat = 0
    while True:
        wdt.feed()
        up = time.ticks_diff(time.ticks_ms(), t0) // 1000
        if up >= next_beat:
            next_beat += HEARTBEAT_S
            print("vitalnode: SAFE STATE (%s): sensor off, sending nothing, up %d s" % (reason, up))
        time.sleep_ms(_SAFE_TICK_MS)


def _vitals(det):
    if det is None:
        return ""
    hr = det.hr_x10
    sp = det.spo2_x10
    return ", hr %s, spo2 %s, alerts 0x%02x" % (
        "%d bpm" % ((hr + 5) // 10) if hr > 0 else "--",
        "%d %%" % ((sp + 5) // 10) if sp > 0 else "--", det.alerts.active)


def main():
    from firmware import lockdown
    locked = lockdown.state == lockdown.LOCKED  # boot.py decided it
    _unload("lockdown")
    try:
        _run()
    except Exception as e:
        if not locked:
            raise  # a developer's node: show it at the REPL
        sys.print_exception(e)
        machine.reset()


def _run():
    from firmware import keystore
    print("vitalnode: device", keystore.device_id(), "running")
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    ks = keystore.load()
    if ks is None:
        _safe_state(wdt, "unprovisioned: no device key")
    cfg = _config(wdt, ks.device_id)
    print("vitalnode: provisioned, key generation %d, broker %s:%d"
          % (ks.gen, cfg["broker"]["host"], cfg["broker"]["port"]))
    _monitor(wdt, cfg, ks)


def _ota_start():
    """Log what boot.py decided; True if this boot is an update's trial."""
    from firmware import otatrial
    pend, last = otatrial.flags()
    if last:
        otatrial.at_start()
    _unload_trial()
    if pend >= 0:
        print("vitalnode: running an update on trial; confirming once healthy")
        return True
    return False


def _healthy(smp, det):
    return smp is not None and smp.times.head > 0 and det.seen_qrs + det.seen_pulse >= HEALTH_BEATS


def _config(wdt, device_id):
    """The validated config without its large fields (the uplink and OTA
    reload those), or the safe state."""
    from firmware import config
    try:
        cfg = config.load(device_id)
    except config.ConfigError as e:
        _safe_state(wdt, str(e))
    del cfg["ota_pubkey"]
    _unload("config")  # only the boot path needs the validator
    return cfg


class _Link:
    """Telemetry (frames into the outbox) and the uplink (outbox to broker)."""

    def __init__(self, ks, cfg):
        import esp32
        import network

        from firmware import outbox, seclog, version
        from firmware.seqno import SeqNo
        from firmware.telemetry import Telemetry
        from firmware.uplink import Uplink
        self.box = outbox.Outbox()
        self.tm = Telemetry(ks, self.box, SeqNo(esp32.NVS("vn_tel")),
                            version.code())
        _unload("version")
        self.wlan = network.WLAN(network.STA_IF)
        self.up = Uplink(ks.device_id, cfg["broker"], cfg.pop("ca_cert"), ks.broker_password(),
                         wlan=self.wlan, wifi=cfg["wifi"], ack_check=self.tm.ack_seq)
        seclog.listener = self.tm.security
        print("vitalnode: outbox holds %d frame(s) from before this boot" % self.box.depth)

    def rssi(self):
        try:
            return self.wlan.status("rssi") if self.wlan.isconnected() else -128
        except (OSError, ValueError):
            return -128


def _link(ks, cfg):
    try:
        return _Link(ks, cfg)
    except OSError as e:  # flash trouble: the node still monitors and alerts locally
        print("vitalnode: telemetry off:", e)
        return None


_running = None  # (link, pump) of the monitor loop, for status()


def status():
    """The running node at a glance, for the REPL (and the simulator); {}
    before the monitor loop starts. Allocates: call it now and then."""
    if _running is None:
        return {}
    link, pump = _running
    smp, det = pump.smp, pump.det
    st = {"samples": smp.times.head if smp else 0,
          "lost": smp.lost + smp.lost_estimated if smp else 0}
    if det is not None:
        st.update(hr_x10=det.hr_x10, spo2_x10=det.spo2_x10, alerts=det.alerts.active,
                  alert_events=det.alerts.count, beats=det.seen_qrs + det.seen_pulse)
    if link is not None:
        st.update(sent=link.up.published - link.up.resent, acked=link.up.acked,
                  resent=link.up.resent, queued=link.box.depth, in_flight=link.box.in_flight,
                  dropped=link.box.dropped_total(),
                  broker_up=link.up.up, connects=link.up.connects,
                  alerts_lost=link.tm.alerts_lost)
    return st


def _monitor(wdt, cfg, ks):
    global _running
    link = _link(ks, cfg)  # before the OTA report, so its security events become frames
    trial = _ota_start()
    # every module first, then the buffers: code loading grows the qstr
    # pools, which need contiguous blocks a fragmented heap may not have
    from alerts import NAMES

    import firmware.detect  # noqa: F401 (_detector's)
    from firmware import sensor
    from firmware.pump import Pump
    gc.collect()
    t0 = time.ticks_ms()
    smp, what = sensor.start()
    print("vitalnode: sensor", what if smp else "fault: " + what)
    if smp is not None:
        _unload("sensor")  # only a retry needs it again
    det = _detector(smp, cfg)
    pump = Pump(smp, det, wdt)
    _running = (link, pump)
    tm = link.tm if link is not None else None
    seen_alerts = 0
    next_beat = HEARTBEAT_S
    next_vitals = VITALS_S
    next_status = 0
    while True:
        wdt.feed()
        pump.alive()
        if det is not None:
            al = det.alerts
            while seen_alerts < al.count:  # rare: allocation is fine here
                kind, raised, at = al.event(seen_alerts)
                seen_alerts += 1
                print("vitalnode: alert", NAMES[kind], "raised" if raised else "cleared")
                if tm is not None:
                    tm.alert(kind, raised, at, det)
        if link is not None:
            link.up.service(link.box)
            pump.alive()
        time.sleep_ms(TICK_MS)
        up = time.ticks_diff(time.ticks_ms(), t0) // 1000
        if tm is not None and up >= next_vitals:
            next_vitals += VITALS_S
            if det is not None:
                tm.vitals(det)
        if tm is not None and up >= next_status:
            next_status += STATUS_S
            tm.status(up, gc.mem_free(), machine.reset_cause(), link.rssi(),
                      smp.lost + smp.lost_estimated if smp is not None else 0)
        if up >= next_beat:
            next_beat += HEARTBEAT_S
            if smp is None and up % SENSOR_RETRY_S == 0:
                from firmware import sensor
                smp, what = sensor.start()
                if smp is not None:
                    print("vitalnode: sensor", what)
                    det = _detector(smp, cfg)
                    pump.smp, pump.det = smp, det
                    seen_alerts = 0
            if trial and up >= HEALTH_S and _healthy(smp, det):
                from firmware import otatrial
                otatrial.confirm()
                _unload_trial()
                trial = False
                print("vitalnode: update confirmed after the health check")
            if smp is not None:
                print("vitalnode: up %d s, heap free %d, samples %d, lost %d, finger %s, leads %s%s%s"
                      % (up, gc.mem_free(), smp.times.head, smp.lost + smp.lost_estimated,
                         "off" if smp.finger_off else "on", "off" if smp.lead_off else "on",
                         _vitals(det), _net(link)))
            else:
                print("vitalnode: up %d s, heap free %d, no sensor%s" % (up, gc.mem_free(), _net(link)))


def _net(link):
    if link is None:
        return ""
    u = link.up
    return ", broker %s, queued %d, sent %d, confirmed %d" % ("up" if u.up else "down", link.box.depth,
                                                             u.published - u.resent, u.acked)
