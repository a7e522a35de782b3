"""The node application: wires the hardware objects to the data path.

It identifies the node, starts the watchdog, opens the sensor (retrying
every SENSOR_RETRY_S while none answers) and runs the supervisor loop:
drain the sensor FIFO when it is due, run detection on what it drained,
feed the watchdog, print alert changes at once and a heartbeat with the
vitals. Telemetry, OTA and keystore plug in here as they land (see README
"Layout").

Guarantee: the watchdog is fed only from this loop, so a hang anywhere in
the loop resets the node within WDT_TIMEOUT_MS.
"""
import gc
import time

import machine
from micropython import const

WDT_TIMEOUT_MS = const(10000)
TICK_MS = const(10)  # loop period: the sampler's FIFO fills in 160 ms at 200 sps
HEARTBEAT_S = const(10)
SENSOR_RETRY_S = const(10)


def device_id():
    """Hex of machine.unique_id() (the Wi-Fi MAC on the ESP32)."""
    return "".join("%02x" % b for b in machine.unique_id())


def _detector(smp):
    from firmware.detect import Detect
    return Detect(smp) if smp is not None else None


def _vitals(det):
    if det is None:
        return ""
    hr = det.hr_x10
    sp = det.spo2_x10
    return ", hr %s, spo2 %s, alerts 0x%02x" % (
        "%d bpm" % ((hr + 5) // 10) if hr > 0 else "--",
        "%d %%" % ((sp + 5) // 10) if sp > 0 else "--", det.alerts.active)


def main():
    from alerts import NAMES
    from firmware import sensor
    print("vitalnode: device", device_id(), "running")
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    t0 = time.ticks_ms()
    smp, what = sensor.start()
    print("vitalnode: sensor", what if smp else "fault: " + what)
    det = _detector(smp)
    seen_alerts = 0
    next_beat = HEARTBEAT_S
    while True:
        wdt.feed()
        if smp is not None and smp.due():
            smp.service()
            det.service()
            al = det.alerts
            while seen_alerts < al.count:  # rare: allocation is fine here
                kind, raised, _ = al.event(seen_alerts)
                seen_alerts += 1
                print("vitalnode: alert", NAMES[kind], "raised" if raised else "cleared")
        time.sleep_ms(TICK_MS)
        up = time.ticks_diff(time.ticks_ms(), t0) // 1000
        if up >= next_beat:
            next_beat += HEARTBEAT_S
            if smp is None and up % SENSOR_RETRY_S == 0:
                smp, what = sensor.start()
                if smp is not None:
                    print("vitalnode: sensor", what)
                    det = _detector(smp)
                    seen_alerts = 0
            if smp is not None:
                print("vitalnode: up %d s, heap free %d, samples %d, lost %d, finger %s, leads %s%s"
                      % (up, gc.mem_free(), smp.times.head, smp.lost + smp.lost_estimated,
                         "off" if smp.finger_off else "on", "off" if smp.lead_off else "on",
                         _vitals(det)))
            else:
                print("vitalnode: up %d s, heap free %d, no sensor" % (up, gc.mem_free()))
