"""Issue 20's reports around the energy model: `make sim --power-save
on|off` reaches each node's config.json, the timeline's bins fit the run,
and `make bench power` records the three battery figures from separate
runs, each described as what it is."""
import json
import subprocess
import sys

import pytest

from tools.bench import __main__ as bench
from tools.paths import ROOT
from tools.sim import __main__ as sim
from tools.sim.world import World


def test_power_save_is_on_unless_asked_off():
    assert sim._args([]).power_save == "on"
    assert sim._args(["--power-save", "off"]).power_save == "off"


@pytest.mark.parametrize("argv", [["--power-save", "of"], ["--power-save", "false"]])
def test_a_mistyped_power_save_is_one_line_and_exit_2(argv):
    r = subprocess.run([sys.executable, "-m", "tools.sim", *argv], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--power-save" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("save", [False, True])
def test_the_option_reaches_each_nodes_config(tmp_path, dev_site_dir, save):
    w = World(tmp_path / "world", nodes=2, log=lambda *_: None, site_dir=dev_site_dir,
              power_save=save)
    try:
        w.start()
        for dev in w.devices:
            cfg = json.loads(w.images[dev]["files"]["config.json"])
            assert cfg["power"]["save"] is save
    finally:
        w.stop()


def test_the_sites_other_power_fields_stay_and_the_firmwares_rules_check_them(dev_site_dir):
    from tools.provision.site import device_config, load_site
    from tools.sim.world import sim_config
    cfg = device_config(load_site(dev_site_dir / "site.json"), "240ac4000001")
    cfg["power"] = {"uplink_s": 30}
    assert sim_config(cfg, False)["power"] == {"uplink_s": 30, "save": False}
    cfg["power"] = {"uplink_s": 5}
    with pytest.raises(Exception, match="power.uplink_s"):
        sim_config(cfg, False)


@pytest.mark.parametrize("duration, spec", [
    (60, [61, 1]),          # 1 s bins, and one for a short last bin
    (600, [601, 1]),
    (601, [302, 2]),        # past 600 s: as wide as keeps about 600 bins
    (86400, [601, 144]),    # a day: 144 s bins
    (700000, [601, 1000]),  # past 600,000 s: 1000 s bins at most, the first 601,000 s
])
def test_timeline_bins_fit_the_run(duration, spec):
    assert sim.timeline_spec(duration) == spec


def _summary(ma, beats=746, faults=()):
    return {"avg_current_ma": ma, "battery_hours": round(500 / ma, 2), "vm": "micropython test",
            "beats_detected": beats, "samples_lost": 0, "faults": list(faults)}


def _outage_summary(tmp_path):
    """An outage run's summary: 20 mA before the broker goes at 600 s, then
    30 mA for its first 400 s and 20 mA after (its timeline CSV in tmp_path)."""
    csv = tmp_path / "current.csv"
    rows = ["start_s,length_s,supply_ma"] + ["%d,4,%s" % (t, 30.0 if 600 <= t < 1000 else 20.0)
                                             for t in range(0, 2400, 4)]
    csv.write_text("\n".join(rows) + "\n")
    return dict(_summary(21.0), outage_at_s=600, outage_seconds=1200, drain_seconds=64.5,
                frames_dropped_by_policy=46, gateway_gap_s_max=235.0,
                per_node=[{"current_timeline": {"csv": str(csv)}}])


def test_bench_power_runs_saving_on_and_off_apart_and_names_each(tmp_path):
    seen = {}

    def fake(cmds):
        seen.update(cmds)
        return {"save_on": _summary(10.0), "save_off": _summary(50.0),
                "faults_all": _summary(12.5, faults=[{"kind": "wifi", "at": 240, "until": 270}]),
                "outage": _outage_summary(tmp_path)}
    r = {"led_ma": 0.5, "spo2_x10": 971, "spo2_valid_share": 1.0, "led_changes": 1}
    out = bench.bench_power(None, run=fake, leds=lambda: {2.0: {"on": r, "off": dict(r, led_ma=1.2)},
                                                          0.25: {"on": r, "off": r}})
    # three runs, the same duration and recordings, and a longer one with a broker outage;
    # each in its own folder
    assert set(seen) == {"save_on", "save_off", "faults_all", "outage"}
    common = [c[:c.index("--power-save")] for n, c in seen.items() if n != "outage"]
    assert common[0] == common[1] == common[2]
    o = seen["outage"]
    assert o[o.index("--outage") + 1] == "1200" and o[o.index("--duration") + 1] == "2400"
    assert "--duration" in common[0] and "--record" in common[0] and "--ppg" in common[0]
    assert seen["save_on"][seen["save_on"].index("--power-save") + 1] == "on"
    assert seen["save_off"][seen["save_off"].index("--power-save") + 1] == "off"
    assert "--faults" not in seen["save_off"] and "--faults" not in seen["save_on"]
    assert seen["faults_all"][seen["faults_all"].index("--faults") + 1] == "all"
    dirs = {c[c.index("--workdir") + 1] for c in seen.values()}
    assert len(dirs) == 4
    # the figures, each from its own run
    assert out["power.avg_current_ma"][0] == 10.0
    assert out["power.battery_hours_500mah"][0] == 50.0          # 500 mAh / 10 mA
    assert out["power.battery_hours_500mah_always_on"][0] == 10.0  # 500 mAh / 50 mA
    assert out["power.battery_hours_500mah_faults_all"][0] == 40.0  # 500 mAh / 12.5 mA
    what = {k: v[2] for k, v in out.items()}
    assert "power saving off" in what["power.battery_hours_500mah_always_on"]
    assert "50.00 mA" in what["power.battery_hours_500mah_always_on"]
    assert "same current" not in what["power.battery_hours_500mah_always_on"]
    assert "FAULTS=all" in what["power.battery_hours_500mah_faults_all"]
    assert "wifi 240-270 s" in what["power.battery_hours_500mah_faults_all"]
    assert "--power-save off" in out["power.battery_hours_500mah_always_on"][3]
    # the outage's current is the mean over the outage only: 400 s at 30, 800 s at 20
    assert out["power.outage_current_ma"][0] == round((400 * 30 + 800 * 20) / 1200, 2)
    assert "20.00 mA from t=60 s" in what["power.outage_current_ma"]
    assert "drained 64.5 s" in what["power.outage_current_ma"] and "46 vitals" in what["power.outage_current_ma"]
    # the LED floor, one figure per perfusion index, the floor's off value named with it
    assert out["power.leds_ma_floor_pi2"][0] == 0.5 and "1.200 mA with it off" in what["power.leds_ma_floor_pi2"]
    assert "perfusion index 0.25 %" in what["power.leds_ma_floor_pi0p25"]


def test_bench_power_says_so_when_both_runs_draw_the_same(tmp_path):
    out = bench.bench_power(None, run=lambda cmds: dict({n: _summary(51.34) for n in cmds},
                                                       outage=_outage_summary(tmp_path)), leds=dict)
    what = out["power.battery_hours_500mah_always_on"][2]
    assert "the two runs draw the same current" in what and "does not act on power.save" in what
    assert out["power.battery_hours_500mah"][0] == out["power.battery_hours_500mah_always_on"][0]
