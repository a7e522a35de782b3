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
    assert raises(simboard.NodeReset, machine.reset).cause == machine.SOFT_RESET
    e = raises(simboard.NodeReset, machine.deepsleep, 5000)
    assert e.cause == machine.DEEPSLEEP_RESET
    assert simboard.board.clock.now_us == 5000 * 1000
    assert len(machine.unique_id()) == 6


def test_rtc_memory_survives_deepsleep_not_power_on():
    machine.RTC().memory(b"hello")
    simboard.board.reset(machine.DEEPSLEEP_RESET)
    assert machine.RTC().memory() == b"hello"
    simboard.board.power_cycle()
    assert machine.RTC().memory() == b""


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
    assert hits == [0, 0]
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
