"""The node application: wires the hardware objects to the data path.

Today it proves the skeleton on a real runtime: it identifies the node,
starts the watchdog, and runs the supervisor loop that feeds it and prints
a heartbeat. Sensor, detection, telemetry, OTA and keystore plug in here as
they land (see README "Layout").

Guarantee: the watchdog is fed only from this loop, so a hang anywhere in
the loop resets the node within WDT_TIMEOUT_MS.
"""
import gc
import time

import machine
from micropython import const

WDT_TIMEOUT_MS = const(10000)
TICK_MS = const(1000)
HEARTBEAT_S = const(10)


def device_id():
    """Hex of machine.unique_id() (the Wi-Fi MAC on the ESP32)."""
    return "".join("%02x" % b for b in machine.unique_id())


def main():
    print("vitalnode: device", device_id(), "running")
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    t0 = time.ticks_ms()
    beats = 0
    while True:
        wdt.feed()
        time.sleep_ms(TICK_MS)
        beats += 1
        if beats % HEARTBEAT_S == 0:
            up = time.ticks_diff(time.ticks_ms(), t0) // 1000
            print("vitalnode: up %d s, heap free %d" % (up, gc.mem_free()))
