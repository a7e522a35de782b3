"""Sampling that never waits for the network: a hardware timer drains the
sensor FIFO and runs detection, whatever the main loop is doing.

    pump = Pump(smp, det, wdt)   # from now on the timer services both
    while True:
        pump.alive()             # the main loop still turns
        up.service(box)          # may block for a few timeouts
        time.sleep_ms(TICK_MS)

The FIFO holds 32 samples (160 ms at 200 sps); the timer fires every
PERIOD_MS, as a soft IRQ. On the ESP32 soft IRQs run between bytecodes
and inside MicroPython's blocking socket calls, which poll pending
callbacks every 100 ms, so a TLS handshake or a dead broker does not stop
it. Detection runs here too, right after the drain, so the sampler's rings
(firmware/sensor.RING_LEN) only bridge one tick.
The watchdog: the timer feeds it only while the main loop called alive()
within STALL_MAX_MS, so a network stall does not reset the node but a
hung main loop still does.
Guarantees: the timer callback allocates nothing (sampler and detector
are allocation-free; the bound method is made once) and is the only
caller of smp.service()/det.service(), so they never run re-entrantly.
Non-guarantee: a blocking C call that does not poll callbacks (DNS on
some ESP-IDF versions) for longer than 160 ms loses samples, and the
sampler counts them (`lost`).
"""
import time

import machine
from micropython import const

PERIOD_MS = const(40)
STALL_MAX_MS = const(60000)
TIMER_ID = const(0)  # stage0's trial deadline uses timer 3


class Pump:
    def __init__(self, smp, det, wdt, period_ms=PERIOD_MS):
        self.smp = smp
        self.det = det
        self.wdt = wdt
        self.ticks = 0
        self.alive_ms = time.ticks_ms()
        self._cb = self._tick  # one bound method, made once (no allocation per tick)
        self._timer = machine.Timer(TIMER_ID)
        self._timer.init(mode=machine.Timer.PERIODIC, period=period_ms, callback=self._cb)

    def _tick(self, _t):
        smp = self.smp
        if smp is not None:
            smp.service()  # every tick, not only on INT: the FIFO never waits 160 ms
            if self.det is not None:
                self.det.service()
        if time.ticks_diff(time.ticks_ms(), self.alive_ms) < STALL_MAX_MS:
            self.wdt.feed()
        self.ticks += 1

    def alive(self):
        self.alive_ms = time.ticks_ms()

    def stop(self):
        self._timer.deinit()
