"""Power-state accounting in the shims (tools/shims/powerstate.py): every
rail's times add up to the run, machine.freq/lightsleep/deepsleep, the
WLAN's states and power-save mode, and the LED drive as the sensor's
registers set it - all on the virtual clock, allocation-free when nothing
changes."""
import time

import machine
import network
import powerstate
import simboard
import simmax
from devtest import ON_MICROPYTHON, alloc_bytes, raises
from max86150 import MAX86150


def _cpu_ms(rep):
    return {k: v for k, v in rep["states_ms"].items() if not k.startswith("wifi_")}


def _radio_ms(rep):
    return {k: v for k, v in rep["states_ms"].items() if k.startswith("wifi_")}


def test_cpu_states_follow_freq_lightsleep_and_deepsleep_and_add_up():
    b = simboard.board
    time.sleep_ms(100)                      # 160 MHz, the boot default
    machine.freq(80000000)
    time.sleep_ms(1000)
    machine.lightsleep(500)
    machine.freq(240000000)
    time.sleep_ms(250)
    e = raises(simboard.NodeReset, machine.deepsleep, 2000)
    b.reset(e.cause)                        # boots at 160 MHz again
    assert machine.freq() == 160000000
    time.sleep_ms(40)
    rep = b.power.report()
    cpu = _cpu_ms(rep)
    assert cpu["cpu_160mhz"] == 140
    assert cpu["cpu_80mhz"] == 1000
    assert cpu["light_sleep"] == 500
    assert cpu["cpu_240mhz"] == 250
    assert cpu["deep_sleep"] == 2000
    assert cpu["cpu_20mhz"] == cpu["cpu_40mhz"] == 0
    assert rep["run_ms"] == 100 + 1000 + 500 + 250 + 2000 + 40
    assert sum(cpu.values()) == rep["run_ms"]
    assert sum(_radio_ms(rep).values()) == rep["run_ms"]  # the radio was off throughout
    assert rep["states_ms"]["wifi_off"] == rep["run_ms"]


def test_radio_states_connect_power_save_and_off():
    b = simboard.board
    b.wifi.add_ap("ward", "pw")
    b.wifi.connect_ms = 1500
    w = network.WLAN(network.STA_IF)
    time.sleep_ms(200)                      # off
    w.active(True)
    time.sleep_ms(300)                      # on, nothing asked
    w.connect("ward", "pw")
    time.sleep_ms(2000)                     # 1500 connecting, then connected
    assert w.isconnected()
    assert w.config("pm") == network.WLAN.PM_PERFORMANCE  # ESP-IDF's default, kept by the port
    w.config(pm=network.WLAN.PM_NONE)
    time.sleep_ms(700)
    w.config(pm=network.WLAN.PM_POWERSAVE)
    time.sleep_ms(400)
    assert raises(RuntimeError, w.config, pm=7)
    w.disconnect()
    time.sleep_ms(100)                      # on, not connecting
    w.active(False)
    time.sleep_ms(50)
    r = _radio_ms(b.power.report())
    assert r["wifi_off"] == 200 + 50
    assert r["wifi_on_idle"] == 300 + 100
    assert r["wifi_connecting"] == 1500
    assert r["wifi_connected_ps_min_modem"] == 500
    assert r["wifi_connected_ps_none"] == 700
    assert r["wifi_connected_ps_max_modem"] == 400
    assert sum(r.values()) == 200 + 300 + 2000 + 700 + 400 + 100 + 50


def test_a_drop_and_the_drivers_retries_count_as_connecting():
    b = simboard.board
    b.wifi.add_ap("ward", "pw")
    b.wifi.connect_ms = 1000
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("ward", "pw")
    time.sleep_ms(3000)                     # 1000 connecting, 2000 connected
    b.wifi.down = True
    b.wifi.drop()                           # the driver retries, finds no AP, retries...
    time.sleep_ms(4000)
    b.wifi.down = False                     # at 7 s, as that second's attempt found no AP
    time.sleep_ms(2000)                     # the attempt from 8 s connects at 9 s
    assert w.isconnected()
    r = _radio_ms(b.power.report())
    assert r["wifi_connecting"] == 1000 + 6000
    assert r["wifi_connected_ps_min_modem"] == 2000
    b.reset(machine.HARD_RESET)             # the radio is off after any reset
    time.sleep_ms(10)
    assert _radio_ms(b.power.report())["wifi_off"] == 10


def test_led_drive_and_sensor_rails_follow_the_chip_registers():
    b = simboard.board
    chip = simmax.attach(simmax.SimMAX86150(int_pin=simmax.INT))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=200, ecg_rate=200, pulse_width=100, led_ir_ma=30.0, led_red_ma=10.0)
    m = b.power
    assert m.part == "max86150" and m.ppg_on and m.ecg_on
    assert m.led_config() == (30000, 10000, 100, 200)  # uA, uA, us, pulses per second
    t0 = b.clock.now_us
    time.sleep_ms(1000)
    s.set_led_codes(50, 100)                # red 10 mA, IR 20 mA (0.2 mA steps)
    assert m.led_config() == (20000, 10000, 100, 200)
    t1 = b.clock.now_us
    time.sleep_ms(500)
    s.shutdown()
    t2 = b.clock.now_us
    assert not m.ppg_on and not m.ecg_on and m.led_config() is None
    time.sleep_ms(250)
    rep = m.report()
    assert len(rep["led"]) == 1             # one pulse width and rate
    pw, pps, ua_ms, lit_ms = rep["led"][0]
    assert (pw, pps) == (100, 200)
    # 40 mA lit until the codes changed, then 30 mA until shutdown (uA x ms)
    assert ua_ms == 40000 * (t1 - t0) / 1000 + 30000 * (t2 - t1) / 1000
    assert rep["sensor_off_ms"] >= 250
    assert rep["ppg_on_ms"] == rep["ecg_on_ms"] >= lit_ms
    assert rep["ppg_on_ms"] + rep["sensor_off_ms"] == rep["run_ms"]  # attached at t=0
    # averaging keeps the LED rate (it pulses at the internal rate), ECG-only lights nothing
    s.configure(sample_rate=400, averaging=2, ecg_rate=200, pulse_width=100)
    assert m.led_config() == (10000, 10000, 100, 400)
    s.configure(channels=("ecg",), ecg_rate=200)
    assert m.ecg_on and not m.ppg_on and m.led_config() is None
    assert chip.m_pps == 0
    assert [e[:2] for e in m.report()["led"]] == [[100, 200], [100, 400]]


def test_max30102_hr_mode_lights_the_red_led_only():
    b = simboard.board
    simmax.attach(simmax.SimMAX30102(int_pin=simmax.INT))
    from max30102 import MAX30102
    s = MAX30102(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=100, pulse_width=411, led_red_ma=12.0, led_ir_ma=20.0, mode="hr")
    assert b.power.part == "max30102" and not b.power.ecg_on
    assert b.power.led_config() == (0, 12000, 411, 100)  # (IR uA, red uA, us, pulses/s)
    s.configure(sample_rate=100, pulse_width=411, led_red_ma=12.0, led_ir_ma=20.0)
    assert b.power.led_config() == (20000, 12000, 411, 100)


def test_state_changes_allocate_nothing_when_nothing_changes():
    b = simboard.board
    chip = simmax.attach(simmax.SimMAX86150(int_pin=simmax.INT))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=200, ecg_rate=200)
    m = b.power
    m.sensor(chip)
    m.radio(powerstate.R_ON)
    m.cpu_awake(160)
    assert alloc_bytes(lambda: m.sensor(chip)) == 0
    assert alloc_bytes(lambda: m.radio(powerstate.R_ON)) == 0
    assert alloc_bytes(lambda: m.radio(powerstate.R_CONNECTED_MIN)) == 0
    assert alloc_bytes(lambda: m.cpu_awake(80)) == 0


def test_the_meter_holds_only_what_the_board_gave_it():
    # its storage is made with the board (the harness's heap): a run's worth of
    # state changes and LED settings leaves the retained heap where it was
    b = simboard.board
    simmax.attach(simmax.SimMAX86150(int_pin=simmax.INT))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=200, ecg_rate=200)
    m = b.power

    def churn():
        for code in range(20, 60):
            s.set_led_codes(code, code + 1)
            m.radio(powerstate.R_CONNECTED_MIN if code & 1 else powerstate.R_ON)
            m.cpu_awake(80 if code & 1 else 160)
            time.sleep_ms(7)
    churn()
    if not ON_MICROPYTHON:
        return  # the heap is measured on the VMs
    import gc
    gc.collect()
    before = gc.mem_alloc()
    churn()
    gc.collect()
    assert gc.mem_alloc() - before <= 0
    assert m.led_merged == 0 and len(m.report()["led"]) == 1


# -- the timeline: per-bin state times for make sim's current-over-time panel --

def _timeline(m, bins, bin_ms):
    """What tools/vm/node.py does before the boot: the table, and a clock
    event at each bin's end."""
    b = simboard.board
    m.timeline(bins, bin_ms * 1000)
    b.clock.call_at(b.clock.now_us + bin_ms * 1000, m.tick, bin_ms * 1000)


def _cols(m):
    """The timeline's non-zero columns as lists, after report() closed the
    bin under way (as tools/vm/node.py streams them)."""
    return {name: [col[i] for i in range(n)] for name, col, n in m.timeline_columns()}


def test_timeline_bins_hold_each_states_time_within_the_bin():
    b = simboard.board
    m = b.power
    time.sleep_ms(250)                      # before the timeline: in no bin
    _timeline(m, 4, 1000)
    time.sleep_ms(300)                      # bin 0: 300 ms at 160 MHz
    machine.freq(80000000)
    time.sleep_ms(500)                      # bin 0: 500 ms at 80 MHz
    machine.lightsleep(1200)                # 200 ms in bin 0, 1000 ms in bin 1
    time.sleep_ms(500)                      # bin 2 (under way): 500 ms at 80 MHz
    tl = m.report()["timeline"]
    assert tl["bins"] == 3 and tl["bin_ms"] == 1000 and not tl["full"]
    assert tl["t0_ms"] == 250
    c = _cols(m)
    assert c["cpu_160mhz"] == [300000, 0, 0]            # us
    assert c["cpu_80mhz"] == [500000, 0, 500000]
    assert c["light_sleep"] == [200000, 1000000, 0]
    assert c["wifi_off"] == [1000000, 1000000, 500000]   # the radio rail covers each bin too
    assert "deep_sleep" not in c and "cpu_240mhz" not in c  # all-zero columns left out


def test_timeline_led_charge_and_sensor_time_per_bin():
    b = simboard.board
    simmax.attach(simmax.SimMAX86150(int_pin=simmax.INT))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure(sample_rate=200, ecg_rate=200, pulse_width=100, led_ir_ma=30.0, led_red_ma=10.0)
    m = b.power
    _timeline(m, 4, 1000)
    time.sleep_ms(2000)
    s.shutdown()
    time.sleep_ms(1000)
    m.report()
    c = _cols(m)
    # 40 mA lit x 100 us x 200 pulses/s = 0.8 mA average: 800 uA x 1 s per bin
    assert c["led_ua_s"][:2] == [800, 800]
    assert c["ppg_on_us"][:2] == c["ecg_on_us"][:2] == [1000000, 1000000]
    # the I2C writes of shutdown() take time in bin 2; from then the chip is off
    assert 0 < c["sensor_off_us"][2] <= 1000000
    assert c["sensor_off_us"][2] + c["ppg_on_us"][2] == 1000000


class _Net:
    tx_bytes = 0
    rx_bytes = 0


def test_timeline_counts_the_bytes_of_each_bin():
    b = simboard.board
    m = b.power
    net = _Net()
    m.timeline(3, 1000000, net)
    b.clock.call_at(b.clock.now_us + 1000000, m.tick, 1000000)
    net.tx_bytes += 300
    net.rx_bytes += 40
    time.sleep_ms(1500)
    net.tx_bytes += 1000
    time.sleep_ms(100)
    m.report()
    c = _cols(m)
    assert c["tx_bytes"] == [300, 1000] and c["rx_bytes"] == [40, 0]


def test_a_full_timeline_stops_recording_and_says_so():
    b = simboard.board
    m = b.power
    _timeline(m, 2, 100)
    time.sleep_ms(450)
    tl = m.report()["timeline"]
    assert tl["full"] and tl["bins"] == 2
    assert _cols(m)["cpu_160mhz"] == [100000, 100000]
    assert m.report()["states_ms"]["cpu_160mhz"] == 450   # the run's totals go on


def test_closing_a_bin_allocates_nothing():
    b = simboard.board
    m = b.power
    _timeline(m, 8, 1000)
    time.sleep_ms(10)
    m.tick()
    machine.freq(80000000)
    time.sleep_ms(10)
    assert alloc_bytes(m.tick) == 0
    assert alloc_bytes(lambda: m.cpu_awake(160)) == 0
