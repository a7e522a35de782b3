"""The energy model (tools/power): Energy = sum of current x time over a
node's state times. Expected figures are worked out by hand here from the
table's documented values (docs/power.md), not by the code under test."""
import pytest

from tools.power import model, table


def _report(run_ms, cpu=None, radio=None, part=None, ppg=0, ecg=0, off=0, led=(), tx=0, rx=0):
    states = {k: 0.0 for k in ("cpu_20mhz", "cpu_40mhz", "cpu_80mhz", "cpu_160mhz", "cpu_240mhz",
                               "light_sleep", "deep_sleep", "wifi_off", "wifi_on_idle",
                               "wifi_connecting", "wifi_connected_ps_none",
                               "wifi_connected_ps_min_modem", "wifi_connected_ps_max_modem")}
    states.update(cpu or {"cpu_160mhz": run_ms})
    states.update(radio or {"wifi_off": run_ms})
    return {"run_ms": run_ms, "states_ms": states, "sensor_part": part, "ppg_on_ms": ppg,
            "ecg_on_ms": ecg, "sensor_off_ms": off, "led": [list(c) for c in led],
            "tx_bytes": tx, "rx_bytes": rx}


def test_todays_node_configuration_gives_the_hand_computed_current():
    # 10 s at 160 MHz; Wi-Fi connecting 2 s then connected in modem sleep (min)
    # 8 s; a MAX86150 with PPG and ECG on, IR and red at 30 mA, 100 us, 200 pulses/s
    r = _report(10000, radio={"wifi_connecting": 2000, "wifi_connected_ps_min_modem": 8000},
                part="max86150", ppg=10000, ecg=10000,
                led=[(100, 200, 60000 * 10000, 10000)])  # 60 mA lit for 10 s, in uA x ms
    cpu = 44.0                                    # ESP32 DS Table 6, 160 MHz, upper end
    radio = (31.12 - 27.18) * 0.8 + (110.0 - 27.0) * 0.2   # IDF DTIM1 share; RX over baseline
    sensor = 1.0 + 1.0                            # PPG core, ECG front end (placeholders)
    leds = 60.0 * 100e-6 * 200                    # mA x s x 1/s = 1.2 mA
    expected = cpu + radio + sensor + leds        # 66.952 mA
    e = model.energy(r)
    assert e["avg_current_ma"] == pytest.approx(expected, abs=0.005)
    assert e["battery_hours"] == pytest.approx(500 / expected, abs=0.005)   # 7.47 h
    assert e["current_ma_by_state"]["sensor_leds"] == pytest.approx(1.2)
    assert e["current_ma_by_state"]["cpu_160mhz"] == pytest.approx(44.0)
    assert sum(e["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert e["shares"]["cpu_160mhz"] == pytest.approx(44.0 / expected, abs=1e-4)


def test_power_save_off_costs_the_receiver_all_the_time():
    r = _report(60000, radio={"wifi_connected_ps_none": 60000})
    assert model.energy(r)["avg_current_ma"] == pytest.approx(44.0 + 83.0)  # 127 mA
    assert model.energy(r, capacity_mah=1000)["battery_hours"] == pytest.approx(1000 / 127.0, abs=0.01)


def test_airtime_at_54_mbit_s_is_priced_as_tx_and_rx_instead_of_connected():
    # 675000 bytes x 8 / 54 Mbit/s = 100 ms of TX; 337500 bytes = 50 ms of RX
    r = _report(1000, radio={"wifi_connected_ps_min_modem": 1000}, tx=675000, rx=337500)
    e = model.energy(r)
    assert e["airtime_ms"] == {"tx": 100.0, "rx": 50.0}
    expected = 44.0 + ((31.12 - 27.18) * 850 + (181.0 - 27.0) * 100 + (110.0 - 27.0) * 50) / 1000
    assert e["avg_current_ma"] == pytest.approx(expected, abs=0.005)


def test_sleep_states_and_clock_rates():
    r = _report(1000, cpu={"cpu_80mhz": 250, "cpu_240mhz": 250, "light_sleep": 400,
                           "deep_sleep": 100})
    expected = (31.0 * 250 + 68.0 * 250 + 0.8 * 400 + 0.010 * 100) / 1000
    assert model.energy(r)["avg_current_ma"] == pytest.approx(expected, abs=0.005)


def test_led_current_is_amplitude_times_width_times_rate():
    assert model.led_ma(30000, 0, 411, 100) == pytest.approx(30 * 411e-6 * 100)   # 1.233 mA
    assert model.led_ma(10000, 10000, 50, 3200) == pytest.approx(20 * 50e-6 * 3200)  # 3.2 mA
    # two register settings in one slot (same width and rate): 20 mA for 3 s, then
    # 40 mA for 1 s, at 411 us x 100 /s, over a 4 s run -> (60 + 40) mA s x 0.0411 / 4 s
    r = _report(4000, part="max30102", ppg=4000,
                led=[(411, 100, 20000 * 3000 + 40000 * 1000, 4000)])
    assert model.energy(r)["current_ma_by_state"]["sensor_leds"] == pytest.approx(
        (20 * 3 + 40 * 1) * 411e-6 * 100 / 4)
    # a shut-down chip draws its shutdown current only: MAX30102 data sheet Rev 1,
    # Electrical Characteristics p. 2, ISHDN 10 uA max (the table's upper end)
    r = _report(1000, part="max30102", off=1000)
    assert model.energy(r)["current_ma_by_state"]["sensor_shutdown"] == pytest.approx(0.010)


@pytest.mark.parametrize("bad", [
    {"cpu": {"cpu_160mhz": 900}},                                     # CPU rail short of the run
    {"radio": {"wifi_off": 500, "wifi_connecting": 600}},             # radio rail over it
    {"part": "max86150", "ppg": 800, "off": 400},                     # sensor rail over it
    {"part": "max86150", "ppg": 100, "off": 900, "led": [(100, 100, 1000 * 500, 500)]},
])
def test_an_account_that_does_not_add_up_is_refused(bad):
    with pytest.raises(model.AccountingError):
        model.energy(_report(1000, **bad))


def test_every_figure_has_a_source_and_assumptions_say_so():
    for name, ma, source, assumption, note in table.rows():
        assert ma > 0 and source and note, name
        if assumption:
            assert "no " in note or "not found" in note or "taken" in note, name


def test_sim_summary_keys_and_one_line():
    r = _report(10000, radio={"wifi_connected_ps_min_modem": 10000})
    per = [{"device": "a"}]
    s = model.sim_report(per, {"a": {"power": r}}, ["a"])
    assert set(s) >= {"avg_current_ma", "battery_hours", "capacity_mah", "current_shares"}
    assert s["capacity_mah"] == 500
    assert s["avg_current_ma"] == pytest.approx(44.0 + 3.94, abs=0.005)
    assert per[0]["power"]["avg_current_ma"] == s["avg_current_ma"]
    assert "mA average" in model.summary_line(s)


def test_docs_print_every_figure_of_the_table():
    from tools.paths import ROOT
    text = (ROOT / "docs" / "power.md").read_text()
    for name, ma, _source, _assumption, _note in table.rows():
        assert "| %s |" % ma in text, name


def test_the_cpus_work_is_priced_out_of_light_sleep():
    # 10 s: 1 s awake at 160 MHz, 9 s in light sleep; 2000 samples read at 160 MHz.
    # Work per sample (table): 20.2 us on wasm x 45 (ESP32 at 240 MHz, the
    # middle of 30-60) x 240/160 = 1363.5 us -> 2727 ms awake, out of light sleep
    r = _report(10000, cpu={"cpu_160mhz": 1000, "light_sleep": 9000})
    r["work_samples"] = {"cpu_160mhz": 2000}
    work_ms = 2000 * 20.2 * 45 * 1.5 / 1000
    expected = (44.0 * (1000 + work_ms) + 0.8 * (9000 - work_ms)) / 10000
    e = model.energy(r)
    assert e["cpu_work_ms"] == pytest.approx(work_ms, abs=0.1)
    assert e["avg_current_ma"] == pytest.approx(expected, abs=0.005)
    # an always-awake CPU did its work within its awake time: nothing to add
    r = _report(10000)
    r["work_samples"] = {"cpu_160mhz": 2000}
    assert model.energy(r)["avg_current_ma"] == pytest.approx(44.0)


def _with_timeline(report, cols, bins, t0_ms=0, bin_ms=1000):
    report["timeline"] = {"t0_ms": t0_ms, "bin_ms": bin_ms, "bins": bins, "full": False,
                          "cols": cols}
    return report


# three bins as the meter records them (us; LED charge in uA x s): 1 s at 160 MHz
# connecting; 1 s half at 160 MHz, half in light sleep, connected in modem sleep;
# a last, short 0.5 s at 80 MHz with the radio off and the sensor on, its LEDs
# drawing 1.2 mA on average (1200 uA x 0.5 s)
BINS = {"cpu_160mhz": [1000000, 500000, 0], "light_sleep": [0, 500000, 0],
        "cpu_80mhz": [0, 0, 500000], "wifi_connecting": [1000000, 0, 0],
        "wifi_connected_ps_min_modem": [0, 1000000, 0], "wifi_off": [0, 0, 500000],
        "ppg_on_us": [0, 0, 500000], "ecg_on_us": [0, 0, 500000], "led_ua_s": [0, 0, 600]}
# by hand, from the table's values (docs/power.md): CPU 44 / 31 / 0.8 mA; radio
# add-on connecting 110 - 27 = 83 mA, modem sleep 31.12 - 27.18 = 3.94 mA;
# PPG core and ECG front end 1 mA each
BIN_MA = [44.0 + 83.0, 0.5 * 44.0 + 0.5 * 0.8 + 3.94, 31.0 + 1.0 + 1.0 + 1.2]  # 127, 26.34, 34.2


def test_the_timeline_prices_each_bin_by_hand():
    r = _with_timeline(_report(2500, part="max86150"), BINS, 3)
    pts = model.timeline(r)
    assert [p[0] for p in pts] == [0.0, 1.0, 2.0]          # start s
    assert [p[1] for p in pts] == [1.0, 1.0, 0.5]          # length s
    assert [p[2] for p in pts] == pytest.approx(BIN_MA, abs=1e-3)
    # the time-weighted mean: (127 + 26.34 + 34.2 x 0.5) / 2.5 s = 68.176 mA
    assert model.mean_ma(pts) == pytest.approx(68.176, abs=1e-3)


def test_the_timelines_mean_is_the_runs_average_current():
    r = _report(2500, cpu={"cpu_160mhz": 1500, "light_sleep": 500, "cpu_80mhz": 500},
                radio={"wifi_connecting": 1000, "wifi_connected_ps_min_modem": 1000, "wifi_off": 500},
                part="max86150", ppg=500, ecg=500,
                led=[(100, 200, 60000 * 500, 500)])      # 60 mA lit x 100 us x 200/s = 1.2 mA
    _with_timeline(r, BINS, 3)
    assert model.energy(r)["avg_current_ma"] == pytest.approx(model.mean_ma(model.timeline(r)),
                                                              abs=0.005)


def test_a_bin_whose_rails_disagree_is_not_priced():
    cols = dict(BINS, wifi_off=[0, 0, 400000])              # the radio rail 100 ms short in bin 2
    with pytest.raises(model.AccountingError, match="bin 2"):
        model.timeline(_with_timeline(_report(2500, part="max86150"), cols, 3))


def test_no_timeline_no_points():
    assert model.timeline(_report(1000)) is None


def test_the_cpus_work_in_a_bin_is_priced_as_in_the_run():
    # the same work in the run and in its one bin: the panel's mean is the run's average
    r = _report(1000, cpu={"cpu_160mhz": 100, "light_sleep": 900})
    r["work_samples"] = {"cpu_160mhz": 200}
    _with_timeline(r, {"cpu_160mhz": [100000], "light_sleep": [900000], "wifi_off": [1000000],
                       "work_samples": [200]}, 1)
    work_ms = 200 * 20.2 * 45 * 1.5 / 1000  # 272.7 ms awake instead of asleep
    expected = (44.0 * (100 + work_ms) + 0.8 * (900 - work_ms)) / 1000
    assert model.timeline(r)[0][2] == pytest.approx(expected, abs=1e-3)
    assert model.energy(r)["avg_current_ma"] == pytest.approx(expected, abs=0.005)
