"""What the node does when the battery monitor (lib/battery.py) changes its
alerts, right after the status frame that carries the reading: each
battery_low / battery_critical raised or cleared becomes an alert frame;
at battery_critical - that status was the last - off() gets the frames to
the gateway, stops sampling, shuts the sensor down (MAX86150 / MAX30102
SHDN: 0.7 uA), turns the radio off and deep-sleeps.

    changed = bat.update()
    tm.status(..., bat)
    if changed:
        from firmware import lowbatt
        lowbatt.changed(changed, bat, tm, det, wdt, link, pump, smp)  # at critical: no return

Imported only then and forgotten after, so the running node does not hold
this code.
Guarantees: sampling goes on while the last frames are sent (the pump's
timer keeps draining the FIFO), for at most FLUSH_S; whatever the gateway
has not acknowledged by then stays in the flash outbox and goes out at the
next boot. The watchdog is fed meanwhile. The sleep has no wake source: the
node stays asleep (about 10 uA) until it is charged and reset or power
cycled - waking on a timer to look again would spend what the cell has left
booting, and a cell this low may brown out mid-boot.
Non-guarantees: nothing is sampled or sent once the sensor is off; an alert
raised during the FLUSH_S is sent at the next boot, not now.
"""
import time

import machine
from micropython import const

FLUSH_S = const(30)
_TICK_MS = const(50)


_BATTERY_LOW = const(9)  # lib/alerts.NAMES: 9 battery_low, 10 battery_critical


def changed(bits, bat, tm, det, wdt, link, pump, smp):
    """The alert frames of `bits` (bat.update()'s); then, if battery_critical
    was raised, off()."""
    alerts(bits, bat, tm, det)
    if bits & bat.active & 2:
        off(wdt, link, pump, smp)


def alerts(bits, bat, tm, det):
    """An alert frame for each battery alert in `bits` (low before
    critical), timed on the header's clock (tm None: printed only)."""
    from alerts import NAMES
    for i in (0, 1):
        if bits & (1 << i):
            kind = _BATTERY_LOW + i
            up = bool(bat.active & (1 << i))
            print("vitalnode: alert", NAMES[kind], "raised" if up else "cleared",
                  "at %d mV, %d %%" % (bat.mv, bat.pct))
            if tm is not None:
                tm.alert(kind, up, time.ticks_ms() & 0x3FFFFFFF, det)


def off(wdt, link, pump, smp):
    print("vitalnode: battery critical: sending the last frames, then sensor off and deep sleep")
    t0 = time.ticks_ms()
    if link is not None:
        if machine.freq() < 160000000:
            machine.freq(160000000)  # the loop that would raise it is left: TLS needs 160
        link.up.retry_now()  # a back-off of up to 37 s would outlast the flush
        while link.box.depth and time.ticks_diff(time.ticks_ms(), t0) < FLUSH_S * 1000:
            wdt.feed()
            pump.alive()
            link.up.service(link.box)
            time.sleep_ms(_TICK_MS)
        print("vitalnode: %d frame(s) left in the outbox for the next boot" % link.box.depth)
    pump.stop()  # before the shutdown: a drain must not find the chip asleep
    if smp is not None:
        import maxfifo
        try:
            smp.sensor.shutdown()
        except maxfifo.SensorError as e:  # it sleeps with the node's supply low anyway
            print("vitalnode: sensor shutdown failed:", e)
    if link is not None:
        link.wlan.active(False)
    import esp32
    esp32.wake_on_ext0(None, 0)  # power saving armed INT: it would end a deep sleep too (modesp32.c)
    print("vitalnode: deep sleep until charged and reset")
    machine.deepsleep()
