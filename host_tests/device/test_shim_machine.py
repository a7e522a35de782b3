"""machine shim: WDT, resets, Pin IRQ, I2C dispatch and faults, RTC, Timer."""
import time

import machine
import simboard
from devtest import raises


class Regs:
    """A tiny register-file device for the I2C tests."""

    def __init__(self):
        self.mem = bytearray(256)

    def read_into(self, reg, buf):
        for i in range(len(buf)):
            buf[i] = self.mem[(reg + i) & 0xFF]

    def write(self, reg, data):
        for i in range(len(data)):
            self.mem[(reg + i) & 0xFF] = data[i]


def test_wdt_resets_the_node_if_not_fed():
    wdt = machine.WDT(timeout=2000)
    for _ in range(10):
        time.sleep_ms(1500)
        wdt.feed()
    e = raises(simboard.NodeReset, time.sleep_ms, 2001)
    assert e.cause == machine.WDT_RESET
    assert simboard.board.clock.now_us == (15000 + 2000) * 1000
    simboard.board.reset(e.cause)
    assert machine.reset_cause() == machine.WDT_RESET
    time.sleep_ms(10000)  # the WDT is gone after reset until restarted


def test_reset_and_deepsleep_raise_node_reset_with_cause():
    assert machine.reset_cause() == machine.PWRON_RESET
    # esp_restart(): the next boot says HARD_RESET (ports/esp32/modmachine.c)
    assert raises(simboard.NodeReset, machine.reset).cause == machine.HARD_RESET
    e = raises(simboard.NodeReset, machine.deepsleep, 5000)
    assert e.cause == machine.DEEPSLEEP_RESET
    assert simboard.board.clock.now_us == 5000 * 1000
    assert len(machine.unique_id()) == 6


def test_rtc_memory_survives_every_reset_but_power_on():
    machine.RTC().memory(b"hello")
    for cause in (machine.DEEPSLEEP_RESET, machine.WDT_RESET, machine.HARD_RESET,
                  machine.SOFT_RESET):
        simboard.board.reset(cause)
        assert machine.RTC().memory() == b"hello", cause
    simboard.board.power_cycle()
    assert machine.RTC().memory() == b""


def test_the_watchdog_survives_a_soft_reset():
    machine.WDT(timeout=2000)
    simboard.board.reset(machine.SOFT_RESET)
    e = raises(simboard.NodeReset, time.sleep_ms, 2500)
    assert e.cause == machine.WDT_RESET


def test_rtc_datetime_counts_on_the_virtual_clock():
    rtc = machine.RTC()
    rtc.datetime((2024, 2, 28, 0, 23, 59, 30, 0))
    time.sleep_ms(86400 * 1000 + 45000)  # a day and 45 s: across Feb 29
    y, mo, d, wd, h, mi, s, _ = rtc.datetime()
    assert (y, mo, d, h, mi, s) == (2024, 3, 1, 0, 0, 15)
    assert wd == 4  # 2024-03-01 was a Friday (0 = Monday)
    rtc.datetime((2000, 1, 1, 5, 0, 0, 0, 0))
    assert rtc.datetime()[3] == 5  # Saturday


def test_pin_irq_fires_on_device_driven_edges():
    pin = machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP)
    hits = []
    pin.irq(lambda p: hits.append(p.value()), trigger=machine.Pin.IRQ_FALLING)
    assert pin.value() == 1  # pulled up
    st = simboard.board.pin(4)
    st.drive(0)  # a chip pulls INT low
    st.drive(None)
    st.drive(0)
    assert hits == []  # soft: scheduled, run at the next pending check
    time.sleep_ms(1)
    assert hits == [0, 0]
    raises(TypeError, pin.irq, lambda p: None, hard=True)  # no `hard` on the ESP32
    out = machine.Pin(5, machine.Pin.OUT, value=1)
    out.off()
    assert out.value() == 0


def test_i2c_register_access_dispatches_to_the_device():
    dev = simboard.board.i2c(0).attach(0x5E, Regs())
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=400000)
    assert i2c.scan() == [0x5E]
    i2c.writeto_mem(0x5E, 0x10, b"\xaa\xbb")
    assert dev.mem[0x10] == 0xAA
    buf = bytearray(2)
    i2c.readfrom_mem_into(0x5E, 0x10, buf)
    assert buf == b"\xaa\xbb"
    assert i2c.readfrom_mem(0x5E, 0x11, 1) == b"\xbb"
    assert raises(OSError, i2c.readfrom_mem, 0x40, 0, 1).args[0] == 19  # nobody there


def test_i2c_nack_and_timeout_faults_are_counted_then_clear():
    bus = simboard.board.i2c(0)
    bus.attach(0x57, Regs())
    i2c = machine.I2C(0, scl=22, sda=21)
    bus.nack(2)
    assert raises(OSError, i2c.readfrom_mem, 0x57, 0, 1).args[0] == 19
    assert raises(OSError, i2c.readfrom_mem, 0x57, 0, 1).args[0] == 19
    assert i2c.readfrom_mem(0x57, 0, 1) == b"\x00"
    bus.timeout(1)
    assert raises(OSError, i2c.readfrom_mem, 0x57, 0, 1).args[0] == 116
    assert i2c.readfrom_mem(0x57, 0, 1) == b"\x00"
    assert bus.errors == 3


def test_stuck_bus_recovers_after_nine_scl_pulses():
    bus = simboard.board.i2c(0)
    bus.attach(0x57, Regs())
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
    bus.stick()
    for _ in range(3):
        assert raises(OSError, i2c.readfrom_mem, 0x57, 0, 1).args[0] == 116
    scl = machine.Pin(22, machine.Pin.OUT, value=1)
    for _ in range(8):
        scl.off()
        scl.on()
    raises(OSError, i2c.readfrom_mem, 0x57, 0, 1)  # 8 pulses are not enough
    scl.off()
    scl.on()
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
    assert i2c.readfrom_mem(0x57, 0, 1) == b"\x00"


def test_soft_i2c_reaches_devices_on_its_pins():
    simboard.board.i2c(("soft", 18, 19), 18, 19).attach(0x5E, Regs())
    i2c = machine.SoftI2C(scl=machine.Pin(18), sda=machine.Pin(19))
    assert i2c.scan() == [0x5E]
    assert machine.I2C(0, scl=22, sda=21).scan() == []


def test_timer_periodic_and_one_shot_on_virtual_time():
    hits = []
    t = machine.Timer(0)
    t.init(mode=machine.Timer.PERIODIC, period=100, callback=lambda tm: hits.append(1))
    once = []
    machine.Timer(1, mode=machine.Timer.ONE_SHOT, period=250, callback=lambda tm: once.append(1))
    time.sleep_ms(1000)
    assert len(hits) == 10 and len(once) == 1
    t.deinit()
    time.sleep_ms(1000)
    assert len(hits) == 10


def test_i2c_register_read_into_preallocated_buffer_does_not_allocate():
    import devtest
    simboard.board.i2c(0).attach(0x57, Regs())
    i2c = machine.I2C(0, scl=22, sda=21)
    buf = bytearray(6)

    def read():
        i2c.readfrom_mem_into(0x57, 0x07, buf)
    read()
    devtest.assert_no_alloc(read)


def test_timer_callbacks_are_scheduled_run_late_after_a_blocking_call_and_never_nest():
    """ports/esp32/machine_timer.c + py/scheduler.c, as docs/shims.md cites."""
    clk = simboard.board.clock
    seen = []

    def cb(t):
        seen.append(clk.now_us // 1000)
        time.sleep_ms(30)  # a sleep inside a callback runs no other callback

    t = machine.Timer(0, mode=machine.Timer.PERIODIC, period=10, callback=cb)
    clk.block(55000)  # a 55 ms C call without a poll: ticks queue up meanwhile
    assert seen[0] == 55  # the first tick's callback, late by 45 ms
    assert t.latency_max_us >= 45000
    time.sleep_ms(200)
    t.deinit()
    assert all(b - a >= 30 for a, b in zip(seen, seen[1:]))  # one at a time


def test_a_callback_that_raises_is_printed_and_the_timer_goes_on():
    n = []

    def cb(t):
        n.append(1)
        raise ValueError("boom")
    t = machine.Timer(1, mode=machine.Timer.PERIODIC, period=10, callback=cb)
    time.sleep_ms(55)
    t.deinit()
    assert len(n) == 5 and simboard.board.clock.callback_errors == 5


def test_the_scheduler_queue_holds_eight_and_drops_the_rest_silently():
    clk = simboard.board.clock
    ran = []
    t = machine.Timer(2, mode=machine.Timer.PERIODIC, period=1, callback=lambda t: ran.append(1))
    clk.block(20000)  # 20 ticks while nothing runs callbacks
    t.deinit()
    assert len(ran) == 8 and t.lost == 12 and clk.sched_dropped == 12


def test_hard_timers_are_refused_and_short_sleeps_are_busy_waits():
    t = machine.Timer(3)
    e = raises(ValueError, t.init, mode=machine.Timer.PERIODIC, period=10, callback=print, hard=True)
    assert "hard" in str(e)
    hits = []
    machine.Timer(3, mode=machine.Timer.ONE_SHOT, period=1, callback=lambda t: hits.append(1))
    time.sleep_ms(1)  # 1000 us: a pending check runs it
    assert hits == [1]
    machine.Timer(3, mode=machine.Timer.ONE_SHOT, period=1, callback=lambda t: hits.append(2))
    for _ in range(10):
        time.sleep_us(150)  # busy waits: no callback
    assert hits == [1]
    time.sleep_us(200)
    assert hits == [1, 2]


def test_isrs_are_held_back_during_a_flash_operation():
    clk = simboard.board.clock
    ran = []
    t = machine.Timer(0, mode=machine.Timer.PERIODIC, period=10,
                      callback=lambda t: ran.append(clk.now_us // 1000))
    clk.flash_op(45000)  # a sector erase: the timer ISR waits for it
    assert ran == [45] and t.ticks == 1  # one tick, 35 ms late; the others lost
    time.sleep_ms(20)
    t.deinit()
    assert ran == [45, 50, 60]  # back on its 10 ms grid


def test_lightsleep_wakes_on_the_ext0_pin_level_or_its_time():
    # ports/esp32/modmachine.c machine_sleep_helper: timer wake-up after ms,
    # ext0 (esp32.wake_on_ext0) on the pin's level
    import esp32
    clk = simboard.board.clock
    pin = machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP)
    esp32.wake_on_ext0(pin, esp32.WAKEUP_ALL_LOW)
    st = simboard.board.pin(4)
    clk.call_later_us(30000, lambda: st.drive(0))  # the sensor pulls INT low at 30 ms
    t0 = clk.now_us
    machine.lightsleep(150)
    assert clk.now_us - t0 == 30000
    st.drive(1)
    t0 = clk.now_us
    machine.lightsleep(150)  # nothing pulls it: the timer ends it
    assert clk.now_us - t0 == 150000
    raises(ValueError, esp32.wake_on_ext0, machine.Pin(5), esp32.WAKEUP_ALL_LOW)  # not an RTC GPIO


def test_after_a_lightsleep_the_ext0_pad_reads_as_a_gpio_only_once_reinitialised():
    # ESP-IDF muxes the wake pad to RTC IO before the sleep and leaves it there;
    # 1.27's Pin.init(mode) calls rtc_gpio_deinit (ports/esp32/machine_pin.c)
    import esp32
    pin = machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP)
    esp32.wake_on_ext0(pin, esp32.WAKEUP_ALL_LOW)
    assert pin.value() == 1
    machine.lightsleep(20)  # INT stays high: the timer ends it
    assert pin.value() == 0 and simboard.board.pin(4).value() == 1
    pin.init(machine.Pin.IN, machine.Pin.PULL_UP)
    assert pin.value() == 1
    esp32.wake_on_ext0(None, 0)


def test_in_lightsleep_timers_and_the_watchdog_stop_and_no_callback_runs():
    # the timer groups are clock-gated: machine.Timer's and the task WDT's
    # counters stop, and Python callbacks wait for the wake
    clk = simboard.board.clock
    calls = []
    t = machine.Timer(0)
    t.init(mode=machine.Timer.ONE_SHOT, period=30, callback=lambda _t: calls.append(clk.now_us))
    wdt = machine.WDT(timeout=100)
    t0 = clk.now_us
    machine.lightsleep(80)   # would miss the watchdog's 100 ms if it kept counting
    assert calls == []
    machine.lightsleep(80)
    assert calls == [] and clk.now_us - t0 == 160000
    time.sleep_ms(40)        # awake: the timer's 30 ms run on from where they stopped
    assert calls == [t0 + 190000]
    wdt.feed()
    e = raises(simboard.NodeReset, time.sleep_ms, 101)
    assert e.cause == machine.WDT_RESET
    simboard.board.reset(e.cause)


def test_lightsleep_does_not_keep_a_wifi_connection():
    import network
    simboard.board.wifi.add_ap("ward", "pw")
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("ward", "pw")
    time.sleep_ms(3000)
    assert w.isconnected()
    machine.lightsleep(100)
    assert not w.isconnected()
