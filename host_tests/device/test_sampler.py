"""Sampler on the register-level chips: loss-free streaming, counted loss
for a late reader, every fault knob, LED control, swap self-test, and no
heap allocation per FIFO read on the MicroPython VMs."""
import time

import machine
import simboard
import simmax
import waveforms
from devtest import ON_MICROPYTHON, alloc_bytes
from max30102 import MAX30102
from max86150 import MAX86150

from firmware.sampler import Sampler

BUS = (0, 22, 21, 400000)


def _i2c():
    return machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))


def _node(chip_cls=simmax.SimMAX86150, irq=True, ecg=None, optics=None, ring_len=4096, **cfg):
    pleth = waveforms.Table(waveforms.ppg_beat(75, 125), 125)
    chip = simmax.attach(chip_cls(int_pin=4 if irq else None, ecg=ecg or waveforms.Const(0),
                                  pleth=pleth, optics=optics))
    s = (MAX86150 if chip_cls is simmax.SimMAX86150 else MAX30102)(_i2c())
    s.configure(**cfg)
    pin = machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP) if irq else None
    return chip, s, Sampler(s, int_pin=pin, ring_len=ring_len, bus=BUS)


def _run(smp, ms, step=Sampler.SLEEP_MS):
    end = time.ticks_add(time.ticks_ms(), ms)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if smp.due():
            smp.service()
        time.sleep_ms(step)


def test_streams_every_sample_in_order_with_exact_timestamps():
    ecg = waveforms.Counter(-3000, 7, -3000, 3000)
    chip, s, smp = _node(ecg=ecg, ecg_ia_gain=5, ecg_pga_gain=1)
    _run(smp, 20000)
    ring, times = smp.rings["ecg"], smp.times
    n = ring.head
    assert smp.lost == 0 and chip.dropped == 0 and smp.errors == 0 and smp.resyncs == 0
    assert chip.produced - n < 32  # the rest is still in the chip's FIFO
    uv = -3000
    for i in range(ring.oldest(), n):
        uv = -3000 + (7 * i) % 6000
        assert ring.get(i) == (uv * 5000) // 12247, i  # sim LSB: 12.247 uV / (IA 5 x PGA 1)
        if i > ring.oldest():
            assert time.ticks_diff(times.get(i), times.get(i - 1)) == 5000
    # stamped with the time the chip produced it (the ones after it are
    # still in the chip's FIFO), to within the one period the first read's
    # moment leaves open
    produced_us = chip.next_us - (chip.count + 1) * 5000
    assert abs(time.ticks_diff(times.get(n - 1), produced_us & 0x3FFFFFFF)) < 5000


def _stall(smp, ms):
    smp.service()
    time.sleep_ms(ms)  # the application does not read for `ms`
    _run(smp, 1000)


def _one_gap(smp, missing):
    t = smp.times
    got = smp.rings["ir"].head
    gaps = [time.ticks_diff(t.get(i), t.get(i - 1)) for i in range(t.oldest() + 1, got)]
    assert sorted(set(gaps)) == [5000, 5000 * (missing + 1)] and gaps.count(5000 * (missing + 1)) == 1


def test_late_reader_loses_only_counted_samples():
    chip, s, smp = _node(irq=False)
    _run(smp, 1000)
    _stall(smp, 250)  # ~50 samples into a 32-deep FIFO: the chip counts the rest
    assert 18 <= chip.dropped <= 20  # (the reads themselves take bus time)
    assert smp.lost == chip.dropped and smp.lost_estimated == 0
    _one_gap(smp, chip.dropped)
    assert smp.rings["ir"].head + smp.lost + chip.count == chip.produced


def test_loss_beyond_the_saturated_overflow_counter_is_measured():
    chip, s, smp = _node(irq=False, ring_len=512)
    _run(smp, 1000)
    _stall(smp, 1000)  # ~200 samples: ~168 dropped, OVF_COUNTER stops at 31
    assert 168 <= chip.dropped <= 170
    assert smp.lost == 31 and smp.lost_estimated == chip.dropped - 31
    _one_gap(smp, chip.dropped)
    assert smp.rings["ir"].head + smp.lost + smp.lost_estimated + chip.count == chip.produced


def test_bus_faults_never_crash_and_recover():
    chip, s, smp = _node()
    bus = simboard.board.i2c(0)
    _run(smp, 1000)
    bus.nack(2)  # absorbed by the driver's retries
    _run(smp, 500)
    assert smp.errors == 0 and s.bus_errors == 2
    bus.timeout(50)  # a long burst: reads fail for a while
    _run(smp, 500)
    assert smp.errors > 0 and smp.fault is not None
    bus.timeout(0)
    _run(smp, 1000)
    assert smp.fault is None
    bus.stick()  # SDA held low: recovered with 9 SCL pulses
    _run(smp, 1000)
    assert smp.recoveries >= 1 and not bus.stuck and smp.fault is None
    got = smp.rings["ir"].head
    assert got + smp.lost + smp.lost_estimated + chip.count == chip.produced


def test_chip_that_lost_its_configuration_is_reconfigured():
    chip, s, smp = _node()
    _run(smp, 1000)
    chip._power_on_reset()  # brown-out of the sensor supply
    _run(smp, 3000)
    assert smp.reinits == 1 and chip.running and smp.fault is None
    assert smp.lost_estimated > 100  # the dead time is accounted, not hidden
    chip.part_id = 0x11  # the sensor is replaced by something else
    chip._power_on_reset()
    _run(smp, 3000)
    assert "PART_ID 0x11" in smp.fault and smp.reinits == 1


def test_finger_off_and_lead_off_are_flagged_with_hysteresis():
    chip, s, smp = _node()
    _run(smp, 2000)
    assert not smp.finger_off and not smp.lead_off
    chip.knobs.finger_off = True
    chip.knobs.lead_off = True
    _run(smp, 1200)
    assert smp.finger_off and smp.lead_off
    chip.knobs.finger_off = False
    chip.knobs.lead_off = False
    _run(smp, 1200)
    assert not smp.finger_off and not smp.lead_off


def test_led_control_brings_dc_into_range_and_backs_off_saturation():
    chip, s, smp = _node(led_ir_ma=2.0, led_red_ma=2.0)
    full = s.config["full_scale"]
    _run(smp, 5000)
    assert smp.swap_test == "ok" and smp.led_changes >= 1
    for name in ("ir", "red"):
        r = smp.rings[name]
        dc = sum(r.get(i) for i in range(r.head - 200, r.head)) // 200
        assert full // 4 <= dc <= full * 4 // 5, (name, dc)
    before = s.led_codes[1]
    chip.knobs.saturate = True
    _run(smp, 1000)
    assert s.led_codes[1] <= before // 2


def test_led_goals_move_each_channels_dc_band_within_their_limits():
    from firmware.sampler import GOAL_MAX, GOAL_MIN, GOAL_MIN_RED
    chip, s, smp = _node(led_ir_ma=30.0, led_red_ma=30.0)
    full = s.config["full_scale"]
    _run(smp, 3000)
    assert smp.swap_test == "ok" and bytes(smp.led[:2]) == bytes((GOAL_MAX, GOAL_MAX))
    smp.set_goals(0, 0)  # below the limits: IR keeps the finger-on level, red may go lower
    assert smp.led[0] == GOAL_MIN and smp.led[1] == GOAL_MIN_RED
    _run(smp, 3000)
    for name, goal in (("ir", GOAL_MIN), ("red", GOAL_MIN_RED)):
        r = smp.rings[name]
        dc = sum(r.get(i) for i in range(r.head - 200, r.head)) // 200
        g = full * goal >> 8
        assert g // 2 <= dc <= g * 8 // 5, (name, dc, g)
        assert dc >= full // 10 or name == "red"  # IR over the finger-on level
    assert not smp.finger_off
    assert smp.set_goals(999, 999) and bytes(smp.led[:2]) == bytes((GOAL_MAX, GOAL_MAX))
    assert not smp.set_goals(GOAL_MAX, GOAL_MAX)  # no change: False


def test_swapped_leds_are_detected_and_relabelled():
    chip, s, smp = _node(chip_cls=simmax.SimMAX30102, sample_rate=100, pulse_width=411)
    chip.knobs.led_swap = True
    chip._reconfigure()
    _run(smp, 2000)
    assert smp.swap_test == "swapped" and smp.ppg_ready
    ir, red = smp.rings["ir"], smp.rings["red"]
    assert ir.get(ir.head - 1) > red.get(red.head - 1)  # IR returns more light


def test_motion_noise_and_saturation_knobs_do_not_break_sampling():
    chip, s, smp = _node()
    chip.knobs.noise = 2000
    chip.knobs.ecg_noise = 500
    now = simboard.board.clock.now_us
    chip.knobs.motion = (now + 200000, now + 1200000, 60000)
    _run(smp, 3000)
    assert smp.lost == 0 and smp.errors == 0
    assert smp.rings["ecg"].head + chip.count == chip.produced


def test_fifo_read_allocates_nothing_on_the_vm():
    if not ON_MICROPYTHON:
        _node()  # the path itself is exercised; the heap is measured on the VMs
        return
    chip, s, smp = _node(ecg=waveforms.Counter(0, 3))
    _run(smp, 3000)  # warm up: LED control settled, events allocated

    def steady():
        for _ in range(50):  # 500 ms: ~6 almost-full interrupts, ~100 samples
            if smp.due():
                smp.service()
            time.sleep_ms(10)

    assert alloc_bytes(steady) == 0
    assert smp.rings["ecg"].head > 500
