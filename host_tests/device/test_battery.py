"""The battery monitor (lib/battery.py): a LiPo's voltage through the divider
to mV and percent on the open-circuit curve, battery_low / battery_critical
raised once per crossing, never flapping; and what the simulator puts behind
it (machine.ADC, the simulated cell, deep sleep without a wake source)."""
import machine
import powerstate
import simbattery
import simboard
import vclock
from devtest import assert_no_alloc, raises

from battery import Battery

# the LiPo curve the node converts with, as published (meshtastic/firmware
# src/power.h OCV_ARRAY, docs/power.md): mV at 100, 90, ... 0 %
CURVE = ((4190, 100), (4050, 90), (3990, 80), (3890, 70), (3800, 60), (3720, 50), (3630, 40),
         (3530, 30), (3420, 20), (3300, 10), (3100, 0))


class Cell:
    """An ADC whose pin sees cell_mv / divider (plus a repeating noise)."""

    def __init__(self, cell_mv, divider=2.0, noise=()):
        self.divider = divider
        self.noise = noise
        self.i = 0
        self.set(cell_mv)

    def set(self, cell_mv):
        self.pin_uv = int(cell_mv / self.divider + 0.5) * 1000  # the port: whole mV x 1000

    def read_uv(self):
        n = self.noise[self.i % len(self.noise)] if self.noise else 0
        self.i += 1
        return self.pin_uv + n


def reading(cell_mv, divider=2.0):
    b = Battery(Cell(cell_mv, divider), divider)
    b.update()
    return b.mv, b.pct


def test_percent_follows_the_lipo_curve_through_the_divider():
    for mv, pct in CURVE:
        assert reading(mv) == (mv, pct), mv
    assert reading(4200)[1] == 100 and reading(4350)[1] == 100  # a charging cell: 100, no more
    assert reading(3000)[1] == 0 and reading(0) == (0, 0)
    # piecewise linear between points, rounded down (the node never reports charge it lacks)
    assert reading(3360)[1] == 15  # halfway between 10 % (3300) and 20 % (3420)
    assert reading(3200)[1] == 5
    assert reading(3358)[1] == 14
    assert reading(4120)[1] == 95
    # other dividers (200k/100k: 3.0): the pin's whole mV, scaled back up
    for div in (3.0, 4.7):
        mv, pct = reading(3760, div)
        assert abs(mv - 3760) <= div and pct in (54, 55), (div, mv, pct)


def test_readings_are_averaged():
    noisy = Cell(3600, noise=(40000, -40000, 25000, -25000))  # +-40 mV at the pin
    b = Battery(noisy, 2.0)
    b.update()
    assert b.mv == 3600


def _feed(b, cell, pcts):
    """Readings at these percentages (cell mV from the curve); the alert
    bits after each."""
    out = []
    for p in pcts:
        i = (100 - p) // 10
        hi_mv, lo_mv = CURVE[i][0], CURVE[min(i + 1, 10)][0]
        cell.set(hi_mv - (hi_mv - lo_mv) * ((100 - 10 * i) - p) // 10 if p < 100 else 4190)
        changed = b.update()
        assert b.pct == p, (p, b.pct)
        out.append((changed, b.active))
    return out


def test_low_is_raised_once_after_two_readings_and_cleared_only_well_above():
    cell = Cell(4000)
    b = Battery(cell, 2.0)
    # one reading at 15 % (a load transient) raises nothing; two in a row do
    got = _feed(b, cell, [40, 15, 16, 15, 14])
    assert got == [(0, 0), (0, 0), (0, 0), (0, 0), (1, 1)]
    # a noisy reading around the threshold does not flap: cleared only at 20 %
    got = _feed(b, cell, [16, 15, 19, 14, 18, 20])
    assert got == [(0, 1), (0, 1), (0, 1), (0, 1), (0, 1), (1, 0)]
    assert _feed(b, cell, [19, 14, 13]) == [(0, 0), (0, 0), (1, 1)]  # a second crossing: again


def test_one_dip_below_critical_after_a_run_of_low_readings_raises_only_low():
    cell = Cell(3400)
    b = Battery(cell, 2.0)
    # a TX burst's sag at 12 %: the critical level needs its own two readings
    assert _feed(b, cell, [12, 2, 12, 12]) == [(0, 0), (1, 1), (0, 1), (0, 1)]
    assert _feed(b, cell, [3, 12, 4, 3]) == [(0, 1), (0, 1), (0, 1), (2, 3)]


def test_critical_implies_low_and_clears_in_steps_on_charging():
    cell = Cell(3200)
    b = Battery(cell, 2.0)
    # a node that boots on a nearly empty cell: both raised together, once
    assert _feed(b, cell, [4, 4, 3, 3]) == [(0, 0), (3, 3), (0, 3), (0, 3)]
    assert _feed(b, cell, [6, 9, 10]) == [(0, 3), (0, 3), (2, 1)]  # critical clears at 10 %
    assert _feed(b, cell, [5, 6, 5, 5]) == [(0, 1), (0, 1), (0, 1), (2, 3)]
    assert _feed(b, cell, [60]) == [(3, 0)]  # charged: both clear at once


def test_update_allocates_nothing():
    cell = Cell(3700)
    b = Battery(cell, 2.0)
    b.update()
    assert_no_alloc(b.update)
    cell.set(3300)
    assert_no_alloc(b.update)
    assert_no_alloc(b.update)  # the alert raised without allocating
    assert b.active == 1


# -- what the simulator puts behind it ------------------------------------------

PRICE = {"cpu": [31.0, 31.0, 31.0, 44.0, 68.0, 0.8, 0.01], "radio": [0.0, 83.0, 83.0, 83.0, 3.94, 1.04],
         "tx": 154.0, "rx": 83.0, "phy_mbit_s": 54.0, "work_us": [405.0, 202.0, 101.0, 50.6, 33.8]}


def _board_cell(pct, capacity_mah=100):
    b = simboard.new_board()
    b.battery = simbattery.Battery(b.power, capacity_mah, pct, PRICE, 35, 2.0)
    return b


def test_the_adc_reads_the_battery_divider_on_adc1_and_refuses_other_pins():
    b = _board_cell(50)
    adc = machine.ADC(machine.Pin(35))
    adc.atten(machine.ADC.ATTN_11DB)
    mv = sum(adc.read_uv() for _ in range(16)) // 16000
    # 50 %: 3720 mV open-circuit, less 44 mA x 0.15 ohm, halved by the divider
    assert abs(mv - (3720 - 44 * 0.15) / 2) <= simbattery.NOISE_MV
    assert machine.ADC(machine.Pin(34)).read_uv() == 0  # nothing wired there
    assert machine.ADC(35) is adc  # one object per pin, as the port's static ones
    assert str(raises(ValueError, machine.ADC, machine.Pin(22))) == "invalid pin"
    assert str(raises(ValueError, adc.atten, 4)) == "invalid attenuation"
    adc.atten(machine.ADC.ATTN_0DB)
    assert adc.read_uv() == 950000  # above the 0 dB range: its top
    b.battery.pin = 4  # a divider on an ADC2 pin
    adc2 = machine.ADC(machine.Pin(4))
    assert adc2.read_uv() > 0
    import network
    w = network.WLAN(network.STA_IF)
    w.active(True)
    assert adc2.read_uv() == 0  # ADC2 reads nothing while Wi-Fi is on


def test_the_simulated_cell_drains_by_the_meters_current():
    b = _board_cell(50, capacity_mah=100)
    adc = machine.ADC(machine.Pin(35))
    bat = Battery(adc, 2.0)
    bat.update()
    assert 47 <= bat.pct <= 50  # the load's drop reads a little low, never high
    vclock.clock.advance_to(vclock.clock.now_us + 3600 * 1000000)  # 1 h at 160 MHz: 44 mA
    assert abs(b.battery.drawn_mah() - 44.0) < 0.01
    assert abs(b.battery.pct() - 6.0) < 0.01
    bat.update()
    assert 4 <= bat.pct <= 6
    b.power.cpu_sleep(powerstate.DEEP)  # 10 uA: the cell all but stops draining
    vclock.clock.advance_to(vclock.clock.now_us + 3600 * 1000000)
    assert abs(b.battery.drawn_mah() - 44.01) < 0.001


def test_a_burst_of_adc_reads_allocates_nothing():
    _board_cell(50)
    bat = Battery(machine.ADC(machine.Pin(35)), 2.0)
    bat.update()  # the cell's voltage at this instant is worked out once
    assert_no_alloc(bat.update)


def test_deep_sleep_without_a_wake_source_sleeps_until_the_world_ends_it():
    b = simboard.new_board()
    fired = []
    t = machine.Timer(0)
    t.init(mode=machine.Timer.PERIODIC, period=10, callback=lambda _: fired.append(1))
    machine.WDT(timeout=1000)

    class End(BaseException):
        pass

    def end():
        raise End()
    clk = vclock.clock
    clk.call_at(clk.now_us + 60 * 1000000, end)
    t0 = clk.now_us
    raises(End, machine.deepsleep)  # no watchdog reset, no timer: asleep until the end
    assert clk.now_us - t0 == 60 * 1000000 and fired == [] and b.wdt is None
    assert b.power.cpu_state == powerstate.DEEP and b.power.radio_state == powerstate.R_OFF
    simboard.new_board()
    raises(simboard.Asleep, machine.deepsleep)  # nothing left to happen: asleep for good
