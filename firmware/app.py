"""The node application: wires the hardware objects to the data path.

It identifies the node, starts the watchdog, opens the sensor (retrying
every SENSOR_RETRY_S while none answers) and runs the supervisor loop:
drain the sensor FIFO when it is due, feed the watchdog, print a heartbeat.
Detection, telemetry, OTA and keystore plug in here as they land (see
README "Layout").

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


def main():
    from firmware import sensor
    print("vitalnode: device", device_id(), "running")
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    t0 = time.ticks_ms()
    smp, what = sensor.start()
    print("vitalnode: sensor", what if smp else "fault: " + what)
    next_beat = HEARTBEAT_S
    while True:
        wdt.feed()
        if smp is not None and smp.due():
            smp.service()
        time.sleep_ms(TICK_MS)
        up = time.ticks_diff(time.ticks_ms(), t0) // 1000
        if up >= next_beat:
            next_beat += HEARTBEAT_S
            if smp is None and up % SENSOR_RETRY_S == 0:
                smp, what = sensor.start()
                if smp is not None:
                    print("vitalnode: sensor", what)
            if smp is not None:
                print("vitalnode: up %d s, heap free %d, samples %d, lost %d, finger %s, leads %s"
                      % (up, gc.mem_free(), smp.times.head, smp.lost + smp.lost_estimated,
                         "off" if smp.finger_off else "on", "off" if smp.lead_off else "on"))
            else:
                print("vitalnode: up %d s, heap free %d, no sensor" % (up, gc.mem_free()))
