"""MAX30102 / MAX86150 drivers: decoding against hand-computed register
bytes (datasheet formats), validation, probe errors, FIFO accounting and
I2C faults - against a bare register file and the register-level chips."""
import time

import machine
import maxfifo
import simboard
import simmax
import waveforms
from devtest import raises
from max30102 import MAX30102
from max86150 import MAX86150


class RegFile:
    """A bare I2C register file: FIFO_DATA (0x07) serves `fifo` bytes."""

    def __init__(self, part_id, wr=0, ovf=0, rd=0, fifo=b"", status=0):
        self.regs = bytearray(256)
        self.regs[0xFF] = part_id
        self.regs[0] = status
        self.regs[4], self.regs[5], self.regs[6] = wr, ovf, rd
        self.fifo = bytes(fifo)
        self.pos = 0
        self.writes = []

    def read_into(self, reg, buf):
        for i in range(len(buf)):
            if reg == 7:
                buf[i] = self.fifo[self.pos]
                self.pos += 1
            else:
                buf[i] = self.regs[reg]
                reg += 1

    def write(self, reg, data):
        for b in data:
            self.writes.append((reg, b))
            self.regs[reg] = b
            reg += 1


def _i2c():
    return machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))


def _attach(addr, dev):
    simboard.board.i2c(0, 22, 21).attach(addr, dev)
    return dev


def test_max30102_decodes_18_bit_left_justified_words():
    # 3 samples x (red, IR); bits 23..18 are not data and must be masked off
    fifo = bytes([0x03, 0xFF, 0xFF, 0x00, 0x00, 0x01,  # red 262143, IR 1
                  0xFC, 0x00, 0x01, 0x01, 0x23, 0x45,  # red 1 (top bits junk), IR 0x12345
                  0x02, 0x00, 0x00, 0x00, 0x80, 0x00])  # red 131072, IR 32768
    dev = _attach(0x57, RegFile(0x15, fifo=fifo))
    s = MAX30102(_i2c())
    s.configure()
    dev.regs[4], dev.regs[6] = 3, 0
    assert s.read_fifo() == 3
    assert list(s.red[:3]) == [262143, 1, 131072]
    assert list(s.ir[:3]) == [1, 0x12345, 32768]


def test_max86150_decodes_19_bit_ppg_and_sign_extended_ecg():
    fifo = bytes([0x07, 0xFF, 0xFF, 0xF8, 0x00, 0x05, 0x03, 0xFF, 0xFF,  # IR 524287, red 5, ECG -1
                  0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x02, 0x00, 0x00,  # IR 0, red 262144, ECG -131072
                  0x00, 0x12, 0x34, 0x00, 0x00, 0x01, 0x01, 0xFF, 0xFF])  # ECG +131071
    dev = _attach(0x5E, RegFile(0x1E, wr=5, rd=2, fifo=fifo))
    s = MAX86150(_i2c())
    s.configure()
    dev.regs[4], dev.regs[6] = 5, 2
    assert s.read_fifo() == 3
    assert list(s.ir[:3]) == [524287, 0, 0x1234]
    assert list(s.red[:3]) == [5, 262144, 1]
    assert list(s.ecg[:3]) == [-1, -131072, 131071]


def test_fifo_count_wraps_and_full_fifo_is_not_read_as_empty():
    dev = _attach(0x5E, RegFile(0x1E, wr=2, rd=30, fifo=bytes(9 * 32)))
    s = MAX86150(_i2c())
    s.configure()
    dev.regs[4], dev.regs[6] = 2, 30  # (2 - 30) mod 32 = 4
    assert s.read_fifo() == 4
    dev.pos = 0
    dev.regs[4], dev.regs[6], dev.regs[5] = 7, 7, 3  # equal pointers + overflow: full
    assert s.read_fifo() == 32 and s.lost == 3
    dev.pos = 0
    dev.regs[5] = 0
    dev.regs[0] = 0x80  # equal pointers, A_FULL set: full
    assert s.read_fifo() == 32
    dev.regs[0] = 0  # equal pointers, nothing flagged: empty
    assert s.read_fifo() == 0


def test_configuration_is_validated_not_clamped():
    _attach(0x5E, simmax.SimMAX86150())
    s = MAX86150(_i2c())
    for kw, word in ((dict(sample_rate=250), "sample_rate"), (dict(pulse_width=75), "pulse_width"),
                     (dict(averaging=3), "averaging"), (dict(adc_range=5000), "adc_range"),
                     (dict(led_ir_ma=10.1), "led_ir_ma"), (dict(led_red_ma=60), "led_red_ma"),
                     (dict(a_full=10), "a_full"), (dict(ecg_rate=500), "ecg_rate"),
                     (dict(ecg_ia_gain=10), "ecg_ia_gain"), (dict(ecg_pga_gain=3), "ecg_pga_gain"),
                     (dict(sample_rate=3200, pulse_width=400, ecg_rate=3200), "pulse_width"),
                     (dict(sample_rate=400), "ecg_rate"), (dict(channels=("ir", "ir")), "channels")):
        e = raises(ValueError, s.configure, **kw)
        assert word in str(e), (kw, str(e))
    assert s.config is None  # nothing half-applied
    cfg = s.configure(led_range_ma=100, led_ir_ma=20.4, sample_rate=400, averaging=2)
    assert cfg["output_rate"] == 200 and s.led_codes[1] == 51
    _attach(0x57, simmax.SimMAX30102())
    p = MAX30102(_i2c())
    assert "at most 400" in str(raises(ValueError, p.configure, sample_rate=800, pulse_width=411))
    assert "mode" in str(raises(ValueError, p.configure, mode="multi"))
    p.configure(sample_rate=800, pulse_width=411, mode="hr")  # HR mode allows it


def test_probe_names_address_and_part_id_found():
    e = raises(maxfifo.SensorNotFound, MAX86150, _i2c())
    assert "0x5e" in str(e) and "no answer" in str(e)
    chip = simmax.attach(simmax.SimMAX86150())
    chip.part_id = 0x15  # a MAX30102-like part at the MAX86150 address
    e = raises(maxfifo.SensorNotFound, MAX86150, _i2c())
    assert "0x5e" in str(e) and "0x15" in str(e) and "0x1e" in str(e)


def test_simulated_fifo_stops_on_full_and_counts_overflow():
    chip = simmax.attach(simmax.SimMAX86150(ecg=waveforms.Counter(0, 1), pleth=waveforms.Const(0)))
    s = MAX86150(_i2c())
    s.configure(sample_rate=200, ecg_rate=200, led_ir_ma=0, led_red_ma=0, ecg_ia_gain=5, ecg_pga_gain=1)
    time.sleep_ms(50 * 5)  # 50 samples into a 32-deep FIFO
    assert s.read_fifo() == 32
    assert s.lost == 18 and chip.dropped == 18
    first = list(s.ecg[:32])  # the oldest 32 are kept, in order
    steps = [b - a for a, b in zip(first, first[1:])]
    assert min(steps) >= 0 and first[0] == 0
    time.sleep_ms(5)
    # the 32-sample read itself took ~7 ms on the bus: the samples made
    # meanwhile found room (the first pop frees a slot), none was lost
    assert 1 <= s.read_fifo() <= 3 and s.lost == 18 and chip.dropped == 18


def test_simulated_fifo_rollover_keeps_newest_and_overflow_saturates():
    chip = simmax.attach(simmax.SimMAX30102(pleth=waveforms.Const(0)))
    s = MAX30102(_i2c())
    s.configure(sample_rate=100, pulse_width=411, rollover=True)
    time.sleep_ms(100 * 10)  # 100 samples: 68 overwritten, counter stops at 31
    assert s.read_fifo() == 32
    assert s.lost == 31 and s.lost_saturated == 1 and chip.dropped == 68


def test_i2c_nack_burst_is_retried_then_reported():
    simmax.attach(simmax.SimMAX86150())
    s = MAX86150(_i2c())
    s.configure()
    bus = simboard.board.i2c(0)
    bus.nack(3)  # within the 3 retries
    time.sleep_ms(100)
    assert s.read_fifo() == 20 and s.bus_errors == 3
    bus.nack(10)
    e = raises(maxfifo.SensorBusError, s.read_fifo)
    assert e.errno == 19 and "after 4 tries" in str(e)


def test_stuck_bus_is_freed_by_recovery():
    simmax.attach(simmax.SimMAX86150())
    s = MAX86150(_i2c())
    s.configure()
    bus = simboard.board.i2c(0)
    bus.stick()
    assert raises(maxfifo.SensorBusError, s.read_fifo).errno == 116
    maxfifo.recover_bus(22, 21)
    s.rebind(_i2c())
    time.sleep_ms(20)
    assert s.read_fifo() == 4


def test_shutdown_stops_sampling_and_wake_resumes():
    simmax.attach(simmax.SimMAX86150())
    s = MAX86150(_i2c())
    s.configure()
    time.sleep_ms(50)
    assert s.read_fifo() == 10
    s.shutdown()
    time.sleep_ms(500)
    assert s.read_fifo() == 0 and s.lost == 0
    s.wake()
    time.sleep_ms(50)
    assert s.read_fifo() == 10


def test_max30102_temperature_and_soft_reset():
    chip = simmax.attach(simmax.SimMAX30102())
    s = MAX30102(_i2c())
    chip.knobs.die_temp_c16 = -5 * 16 + 3  # -4.8125 C
    assert s.temperature() == -4.8125
    s.configure()
    s.soft_reset()
    assert chip.regs[0x09] == 0 and not chip.running
    raises(maxfifo.SensorError, MAX86150.temperature, None)


def test_almost_full_interrupt_drives_the_int_pin():
    simmax.attach(simmax.SimMAX86150(int_pin=4))
    s = MAX86150(_i2c())
    s.configure(a_full=20)
    pin = machine.Pin(4, machine.Pin.IN)
    seen = []
    pin.irq(handler=lambda p: seen.append(time.ticks_ms()), trigger=machine.Pin.IRQ_FALLING)
    t0 = time.ticks_ms()  # configure() took a few ms of bus time; sampling began within it
    time.sleep_ms(95)
    assert seen == [] and pin.value() == 1
    time.sleep_ms(10)  # the 20th sample lands 100 ms after sampling began
    assert len(seen) == 1 and 95 <= time.ticks_diff(seen[0], t0) <= 100 and pin.value() == 0
    assert s.read_fifo() in (20, 21) and pin.value() == 1  # (a 21st may land meanwhile)
