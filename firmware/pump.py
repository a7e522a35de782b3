"""Sampling that never waits for the network: a hardware timer drains the
sensor FIFO and runs detection, whatever the main loop is doing.

    pump = Pump(smp, det, wdt)   # from now on the timer services both
    while True:
        pump.alive()             # the main loop still turns
        up.service(box)          # may block for a few timeouts
        time.sleep_ms(TICK_MS)

The FIFO holds 32 samples (160 ms at 200 sps). On the ESP32 a timer's
callback is only scheduled by its ISR (ports/esp32/machine_timer.c) and
runs at the next point that runs pending callbacks: between bytecodes,
in sleeps, and every 100 ms inside a blocking socket call - one callback
per such point (py/scheduler.c: "Run at most one pending Python
callback"). So the timer is one-shot, re-armed by its own callback: at
most one tick waits in the scheduler's 8-entry queue, a long socket wait
drains the FIFO every 100 ms instead of running a backlog of stale ticks
(and the rest of the queue stays free for stage0's deadline check).
Nothing else should schedule callbacks while sampling: the sensor's INT
pin is not used (firmware/sensor.py). Detection runs here too, right
after the drain, so the sampler's rings only bridge a few ticks.
The watchdog: the timer feeds it only while the main loop called alive()
within STALL_MAX_MS, so a network stall does not reset the node but a
hung main loop still does.
Power saving (sleep()): the main loop light-sleeps with the timer
stopped; the sensor's INT (FIFO almost full, 17 samples) or the sleep's
own limit wakes the CPU, and the main loop drains at once. The timer
groups stop in light sleep, so the timer could not drain meanwhile
anyway; the watchdog stops too, and the main loop feeds it at each wake.
Guarantees: the timer callback allocates nothing (sampler and detector
are allocation-free; the bound method is made once) and is the only
caller of smp.service()/det.service(), so they never run re-entrantly.
Non-guarantee: a blocking C call that runs no callbacks (DNS, a flash
sector erase, the TLS handshake's public-key step) for longer than the
FIFO's slack loses samples; the sampler counts them (`lost`), and
docs/timing.md lists each such call with its duration.
"""
import time

import machine
from micropython import const

# a socket wait runs callbacks every 100 ms: a tick due just as one starts
# waits up to PERIOD_MS + 100 ms = 130 ms, 26 of the FIFO's 32 samples
PERIOD_MS = const(30)
STALL_MAX_MS = const(60000)
TIMER_ID = const(0)  # stage0's trial deadline uses timer 3


class Pump:
    def __init__(self, smp, det, wdt, period_ms=PERIOD_MS):
        self.smp = smp
        self.det = det
        self.wdt = wdt
        self.ticks = 0
        self.alive_ms = time.ticks_ms()
        self.stall_ms = STALL_MAX_MS  # firmware/otapush: the download's deadline
        self.period_ms = period_ms
        self._cb = self._tick  # one bound method, made once (no allocation per tick)
        self._busy = False
        self._timer = machine.Timer(TIMER_ID)
        self._arm()

    def _arm(self):
        self._timer.init(mode=machine.Timer.ONE_SHOT, period=self.period_ms, callback=self._cb)

    def _tick(self, _t):
        if self._cb is None or self._busy:
            return  # stopped while this tick waited in the queue, or a drain runs
        self._busy = True
        try:
            self._arm()  # the next tick, PERIOD_MS from now: never more than one queued
            smp = self.smp
            if smp is not None:
                smp.service()  # every tick, not only on INT: the FIFO never waits 160 ms
                if self.det is not None:
                    self.det.service()
            if time.ticks_diff(time.ticks_ms(), self.alive_ms) < self.stall_ms:
                self.wdt.feed()
            self.ticks += 1
        finally:
            self._busy = False

    def sleep(self, ms):
        """Light-sleep up to ms - the sensor's INT ends it sooner (the
        caller set esp32.wake_on_ext0) - with the timer stopped, then drain
        at once and re-arm the timer. A drain the scheduler runs meanwhile
        returns at once (_busy), so service() never runs re-entrantly."""
        self._timer.deinit()
        machine.lightsleep(ms)
        self._tick(None)

    def alive(self):
        self.alive_ms = time.ticks_ms()

    def stop(self):
        self._cb = None
        self._timer.deinit()
