"""The node application: wires the hardware objects to the data path.

It identifies the node, starts the watchdog, loads its key and its
configuration, opens the sensor (retrying every SENSOR_RETRY_S while none
answers) and runs the supervisor loop. A timer (firmware/pump.py) drains
the sensor FIFO and runs detection, so the network can never stall
sampling; the loop feeds the watchdog, turns alert changes (at once),
vitals (every VITALS_S) and status (every STATUS_S) into sealed frames in
the flash outbox (firmware/telemetry.py), lets the uplink publish them
(firmware/uplink.py) and prints a heartbeat.

OTA: on a trial boot (stage0.py ran a new slot) the app confirms the update
once it is healthy - the sensor delivers samples and at least
HEALTH_BEATS beats were detected, no earlier than HEALTH_S after start -
and otherwise leaves it unconfirmed, so stage0.py's deadline reverts it;
a trial with no sensor answering by HEALTH_S can never pass, and is
abandoned at once (otatrial.abandon: stage0 reverts it at that reset).
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
HEALTH_S = const(30)
HEALTH_BEATS = const(10)
SLEEP_MS = const(150)  # a light sleep's limit: the FIFO (32 samples, 160 ms) never overflows
SESSION_MAX_MS = const(15000)  # a radio batch that cannot deliver gives up until the next one
_ALERT = const(2)  # frames.ALERT (an outbox kind)
_BOOT_GC_BYTES = const(2048)


def _detector(smp, cfg):
    from firmware.detect import Detect
    if smp is None:
        return None
    return Detect(smp, mains=cfg["mains_hz"], thresholds=cfg["alerts"],
                  led_floor=cfg["power"]["led_floor"])


def _unload(name):
    """Forget firmware.<name> so its code leaves the heap (lazy re-import)."""
    import firmware
    sys.modules.pop("firmware." + name, None)
    if hasattr(firmware, name):
        delattr(firmware, name)


def main():
    """main.py's call. In this order, against the heap's fragmentation
    (and with the GC collecting every _BOOT_GC_BYTES meanwhile): the code
    the node keeps; its key and config (firmware/start.py, gone once done);
    the sampling buffers; the telemetry link and the OTA report; then the
    supervisor loop."""
    from firmware import lockdown
    locked = lockdown.state == lockdown.LOCKED  # stage0 decided it
    _unload("lockdown")
    # collect every few KB while booting: garbage the loading leaves goes
    # before the next long-lived object lands beyond it (fragmentation)
    gc.threshold(_BOOT_GC_BYTES)
    try:
        wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
        _load_code()
        from firmware import start
        ks, cfg = start.identity(wdt, HEARTBEAT_S)  # or the safe state
        sys.modules.pop("stage0", None)  # the boot is done
        smp, det, pump = start.sampling(wdt, cfg, _detector)
        bat = start.battery(cfg)
        link, trial = start.link(ks, cfg)
        power = start.power(cfg)
        del ks, start
        _unload("start")
        if not trial:  # only a trial's confirm records a security event from here on
            _unload("seclog")
        gc.collect()
        gc.threshold(-1)  # booted: the GC runs when the heap is full, as by default
        _monitor(wdt, cfg, link, trial, smp, det, pump, power, bat)
    except Exception as e:
        if not locked:
            raise  # a developer's node: show it at the REPL
        sys.print_exception(e)
        machine.reset()


def _load_code():
    """The code the running node keeps, loaded first, into a young heap:
    the start's modules (key, config, link set-up) come after and leave,
    and their holes must not lie between the long-lived objects."""
    import alerts  # noqa: F401
    import max86150  # noqa: F401
    import firmware.clock  # noqa: F401
    import firmware.detect  # noqa: F401
    import firmware.outbox  # noqa: F401
    import firmware.pump  # noqa: F401
    import firmware.sampler  # noqa: F401
    import firmware.telemetry  # noqa: F401
    import firmware.uplink  # noqa: F401
    gc.collect()


def _unload_trial():
    """Forget firmware.otatrial and stage0, which its calls import (the
    boot ran already; its code need not stay in the heap)."""
    _unload("otatrial")
    sys.modules.pop("stage0", None)


def _vitals(det):
    if det is None:
        return ""
    hr = det.hr_x10
    sp = det.spo2_x10
    # a value the node does not vouch for (motion, noise, poor contact) is
    # marked so: it is sent too, flagged not valid
    return ", hr %s, spo2 %s, alerts 0x%02x" % (
        ("%d bpm" if det.hr_valid else "%d? bpm (not valid)") % ((hr + 5) // 10) if hr > 0 else "--",
        ("%d %%" if det.spo2_valid else "%d? %% (not valid)") % ((sp + 5) // 10) if sp > 0 else "--",
        det.alerts.active)


def _healthy(smp, det):
    return smp is not None and smp.times.head > 0 and det.seen_qrs + det.seen_pulse >= HEALTH_BEATS


_running = None  # (link, pump) of the monitor loop, for a debugger or the simulator


def _monitor(wdt, cfg, link, trial, smp, det, pump, power, bat=None):
    """Power saving (config power.save, docs/power.md): between radio
    batches the loop light-sleeps (pump.sleep: the sensor's INT wakes it),
    with the radio off; a batch - every uplink_s, or at once when an alert
    is queued - turns the radio on, delivers the outbox (every frame
    confirmed) and turns it off again, or gives up after SESSION_MAX_MS
    (NO_AP_MS when no access point is in range: firmware/uplink.no_ap)
    and tries at the next batch; batches that could not connect space the
    next ones out (firmware/uplink.batch_wait, up to power.retry_max_s).
    Without it the radio stays on and the loop ticks every TICK_MS. Vitals
    are made every VITALS_S either way."""
    global _running
    from alerts import NAMES
    last = since = time.ticks_ms()
    up = 0  # s since the loop began, kept by steps: ticks_diff wraps at 2**29 ms (6.2 days)
    rem = 0  # ms not yet counted in up
    _running = (link, pump)
    tm = link.tm if link is not None else None
    wlan = link.wlan if link is not None else None
    intp, uplink_s, mhz = power  # start.power()
    save = intp is not None
    radio = link is not None  # the boot's batch: connect, report, take the time
    next_batch = uplink_s
    retry_max = cfg["power"]["retry_max_s"]
    fails = 0  # batches in a row that could not connect
    batch_at = 0  # up when the batch under way began
    connects = link.up.connects if link is not None else 0
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
                    if not radio:
                        batch_at = up
                    radio = True  # an alert wakes the radio at once, or keeps its batch
                    since = time.ticks_ms()  # going for a whole session
        if radio and link is not None:
            if save and mhz < 160 and machine.freq() < 160000000:
                machine.freq(160000000)  # TLS and the radio at 160 MHz at least
            link.up.service(link.box)
            pump.alive()
            t = time.ticks_ms()
            if save and (link.box.depth == 0 and link.up.up
                         or time.ticks_diff(t, since) > SESSION_MAX_MS
                         or link.up.no_ap(t)):  # out of coverage: try at the next batch
                link.up.radio_off()
                radio = False
                if mhz < 160:
                    machine.freq(mhz * 1000000)
                from firmware.uplink import batch_wait  # (loaded with the link)
                fails = 0 if link.up.connects != connects else fails + 1
                connects = link.up.connects
                wait = batch_wait(fails, uplink_s, retry_max, link.box.count(_ALERT))
                if batch_at + wait > next_batch:  # an outage: the next batch later
                    next_batch = batch_at + wait
        if radio or intp is None or not intp.value():  # (INT held low: it would not sleep)
            time.sleep_ms(TICK_MS)
        else:
            pump.sleep(SLEEP_MS)
            # the wake left INT's pad on the RTC mux (ESP-IDF: rtc_gpio_deinit before
            # digital use); a mode-setting init takes it back (machine_pin.c)
            intp.init(machine.Pin.IN, machine.Pin.PULL_UP)
        now = time.ticks_ms()
        rem += time.ticks_diff(now, last)
        last = now
        if rem >= 1000:
            up += rem // 1000
            rem %= 1000
        if link is not None and up >= next_batch:
            next_batch += uplink_s
            if not radio:
                radio = True
                since = time.ticks_ms()
                batch_at = up
        if tm is not None and up >= next_vitals:
            next_vitals += VITALS_S
            if det is not None:
                tm.vitals(det)
        if up >= next_status:  # the battery is read with or without a link
            next_status += STATUS_S
            changed = bat.update() if bat is not None else 0  # lib/battery.py
            if tm is not None:
                tm.status(up, gc.mem_free(), machine.reset_cause(), _rssi(wlan),
                          smp.lost + smp.lost_estimated if smp is not None else 0, bat)
            if changed:  # a battery alert raised or cleared (rare); at critical, the node's last act
                from firmware import lowbatt
                lowbatt.changed(changed, bat, tm, det, wdt, link, pump, smp)
                _unload("lowbatt")
                if tm is not None:
                    if not radio:
                        batch_at = up
                    radio = True  # an alert wakes the radio at once
                    since = time.ticks_ms()
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
            if trial and up >= HEALTH_S:
                from firmware import otatrial
                if smp is None:  # no sensor on this slot: it can never pass; revert now
                    print("vitalnode: update abandoned: no sensor answers")
                    otatrial.abandon("no sensor")
                if _healthy(smp, det):
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


def _rssi(wlan):
    try:
        return wlan.status("rssi") if wlan.isconnected() else -128
    except (OSError, ValueError):
        return -128


def _net(link):
    if link is None:
        return ""
    u = link.up
    return ", broker %s, queued %d, sent %d, confirmed %d" % (
        "up" if u.up else "down" if link.wlan.active() else "between batches", link.box.depth,
        u.published - u.resent, u.acked)
