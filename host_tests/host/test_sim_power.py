"""`make sim` with power saving (config power.save, the default): the
node light-sleeps between FIFO drains and sends in batches, and loses
nothing for it - the same beats as awake, no sample lost, every frame
measured before the last batch stored, an alert at once (docs/power.md)."""
import json
import subprocess
import sys

from tools.paths import ROOT


def _sim(tmp_path, name, sim_args, *args):
    out = tmp_path / name / "summary.json"
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--out", str(out), *sim_args] + list(args),
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout, json.loads(out.read_text())


def test_sleeping_changes_no_beat_and_costs_no_sample(tmp_path, sim_args):
    # 130 s: batches at boot, 60 s and 120 s deliver everything measured before
    _, on = _sim(tmp_path, "on", sim_args, "--duration", "130")
    _, off = _sim(tmp_path, "off", sim_args, "--duration", "130", "--power-save", "off")
    assert on["power_save"] is True and off["power_save"] is False
    beats_on = [b for b in on["per_node"][0]["beats_ms"] if b < 110000]
    beats_off = [b for b in off["per_node"][0]["beats_ms"] if b < 110000]
    assert len(beats_off) > 100 and beats_on == beats_off
    assert on["samples_lost"] == off["samples_lost"] == 0 and on["crashes"] == 0
    assert on["frames_dropped"] == 0 and on["frames_queued_at_end"] <= 3  # made after 120 s
    # vitals reach the gateway within a minute of their measurement
    assert on["vitals_latency_s_max"] <= 60
    # the CPU sleeps between drains; the radio is off between batches
    p = on["per_node"][0]["power"]["states_ms"]
    assert p["light_sleep"] > 0.3 * 130000 and p["wifi_off"] > 0.7 * 130000
    assert off["per_node"][0]["power"]["states_ms"]["light_sleep"] == 0
    assert on["avg_current_ma"] < 0.75 * off["avg_current_ma"]


def test_an_alert_wakes_the_radio_at_once(tmp_path, sim_args):
    out, s = _sim(tmp_path, "alert", sim_args, "--duration", "100", "--faults", "finger")
    assert "vitalnode: alert finger_off raised" in out
    assert s["alerts"] >= 1 and s["alerts_lost"] == 0
    assert s["alert_latency_ms_p95"] <= 5000
