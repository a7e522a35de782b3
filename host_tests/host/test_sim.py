"""`make sim`: the real boot.py -> main.py on a simulated node, both runtimes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.paths import ROOT


KEYS = ("runtime", "sim_seconds", "wall_seconds", "record", "beats_reference", "beats_detected",
        "se", "ppv", "frames_sent", "frames_verified", "frames_stored", "alerts", "samples_lost",
        "peak_heap_bytes")


@pytest.fixture
def sim(tmp_path, sim_args):
    """Run `python -m tools.sim` with its files in tmp_path: (result, summary or None)."""
    def run(*args, timeout=180):
        out = tmp_path / "summary.json"
        r = subprocess.run([sys.executable, "-m", "tools.sim", "--out", str(out), *sim_args]
                           + list(args), cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout)
        return r, (json.loads(out.read_text()) if out.exists() else None)
    return run


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_sim_runs_the_firmware_end_to_end_and_writes_the_summary(sim, tmp_path, runtime):
    r, s = sim("--runtime", runtime, "--duration", "35", "--power-save", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "vitalnode boot: reset cause power-on" in lines
    beats = [ln for ln in lines if ln.startswith("vitalnode: up ")]
    assert len(beats) == 3  # at 10, 20, 30 s
    assert "vitalnode: sensor MAX86150" in lines
    n = int(beats[-1].split("samples ")[1].split(",")[0])
    # 200 sps from shortly after boot; 'up' is whole seconds and the loop
    # prints it when its 10 s tick comes round (bus and flash take real time)
    assert 29 * 200 <= n <= 31 * 200
    assert "lost 0, finger on, leads on, hr " in beats[-1] and ", broker up," in beats[-1]
    hr = int(beats[-1].split("hr ")[1].split(" bpm")[0])
    assert 60 <= hr <= 90  # MIT-BIH 100: 75 bpm on average
    assert "spo2 97 %, alerts 0x00" in beats[-1]  # the sim's default SpO2
    assert all(k in s for k in KEYS)
    assert s["runtime"] == runtime and s["sim_seconds"] == 35 and s["record"] == "100"
    assert s["crashes"] == 0 and s["resets"] == [] and s["boots"] == 1
    # every vitals frame (one per 5 s) and status frame went through the real
    # broker and was verified and stored by the gateway
    assert s["frames_sent"] >= 7 and s["frames_sent"] == s["frames_verified"] == s["frames_stored"]
    # at most the frame of the last instant is unpublished; published ones may
    # still await the gateway's acknowledgement (kept on the node's flash)
    assert s["frames_queued_at_end"] - s["frames_in_flight_at_end"] <= 1 and s["frames_dropped"] == 0
    # the beats the node sent, scored against the record's annotations
    # (scored up to 6 s before the last frame: a held beat may still be on its way)
    assert s["beats_reference"] >= 25 and s["se"] >= 95 and s["ppv"] >= 95
    assert s["samples_lost"] == 0
    # the energy model (tools/power): today's node never sleeps, so the CPU at
    # 160 MHz spans the whole run, and the radio's states add up to it too
    p = s["per_node"][0]["power"]
    assert p["states_ms"]["cpu_160mhz"] == p["run_ms"] == 35000
    assert sum(v for k, v in p["states_ms"].items() if k.startswith("wifi_")) == pytest.approx(35000)
    assert s["avg_current_ma"] > 44.0  # at least the CPU rail at 160 MHz (docs/power.md)
    assert s["battery_hours"] == pytest.approx(500 / s["avg_current_ma"], abs=0.01)
    assert any(ln.startswith("  power: ") for ln in lines)
    assert (ROOT / s["png"]).stat().st_size > 10000
    assert Path(s["png"]).parent == (tmp_path / "sim").resolve()  # nothing of the run in build/
    bundle = json.loads((ROOT / s["fhir_bundle"]).read_text())
    assert bundle["resourceType"] == "Bundle"
    by = {}
    for e in bundle["entry"]:
        by.setdefault(e["resource"]["resourceType"], []).append(e)
    assert len(by["Patient"]) == 1 and len(by["Device"]) == 1
    assert len(by["Observation"]) == s["fhir_observations"] > 0
    # the node's clock comes from the gateway's authenticated acks: after the first one
    # every Observation has the node's measurement time and names the simulated patient
    # (the world admits SIM-1 and puts the node on it)
    assert by["Patient"][0]["resource"]["identifier"][0]["value"] == "SIM-1"
    timed = [e["resource"] for e in by["Observation"] if "effectiveDateTime" in e["resource"]]
    assert len(timed) >= len(by["Observation"]) - 2
    assert all(o["subject"]["reference"] == by["Patient"][0]["fullUrl"] for o in timed)
    if runtime == "micropython":
        # the chip's own MicroPython, deployed .mpy files, under the ESP32's 112 KB GC heap
        assert s["vm"] == "micropython 1.27.0 unix 32-bit deployed" and s["heap_cap"] == "112K"
        # the deployed layout's steady-state budget (docs/runtime.md "Heap budget")
        assert 0 < s["peak_heap_bytes"] <= 91 * 1024
        assert s["min_free_heap_bytes"] > 0


def test_sim_fault_scenario_loses_nothing(sim):
    r, s = sim("--duration", "120", "--faults", "broker,wifi,finger", "--power-save", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    events = [ln for ln in r.stdout.splitlines() if " fault " in ln]
    assert len(events) == 6  # start and end of each
    assert "vitalnode: alert finger_off raised" in r.stdout
    assert s["crashes"] == 0 and s["samples_lost"] == 0 and s["frames_dropped"] == 0
    # frames made during the outages were queued and delivered afterwards
    assert s["frames_sent"] == s["frames_stored"] >= 24
    assert s["frames_queued_at_end"] - s["frames_in_flight_at_end"] <= 1
    assert s["alerts"] >= 1 and s["alerts_lost"] == 0


def test_sim_nodes_share_the_broker_and_keep_their_data_apart(sim):
    r, s = sim("--duration", "30", "--nodes", "2", "--power-save", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    per = s["per_node"]
    assert len({p["device"] for p in per}) == 2
    for p in per:
        assert p["frames_sent"] >= 6 and p["frames_stored"] == p["frames_sent"]
        assert p["frames_refused"] == {}
    assert s["frames_stored"] == sum(p["frames_stored"] for p in per)
    ids = [ln.split("]")[0][1:] for ln in r.stdout.splitlines() if ln.startswith("[")]
    assert set(ids) == {p["device"] for p in per}


def test_sim_battery_crosses_low_then_critical_and_the_node_sleeps_with_nothing_lost(sim):
    # the smallest cell, 50 mAh, at 16 % (power saving on, ~30 mA): a point every ~60 s
    r, s = sim("--duration", "1000", "--battery-pct", "16", "--battery-mah", "50")
    assert r.returncode == 0, r.stdout + r.stderr
    p = s["per_node"][0]
    g = p["battery_gateway"]
    names = [(a[0], a[1]) for a in g["alerts"]]
    assert names == [("battery_low", True), ("battery_critical", True)]  # each once, in order
    seq_status, mv, pct = g["last_status"]
    # the final status frame carries the critical reading; after it only the alerts
    assert pct <= 5 and 3100 <= mv <= 3300
    assert seq_status < g["alerts"][1][2] == g["last_seq"]
    # the node deep-sleeps: nothing more for the rest of the run, no reset, no crash
    assert g["deep_sleep_s"] > 60 and s["resets"] == [] and s["crashes"] == 0
    assert "vitalnode: deep sleep until charged and reset" in r.stdout
    # the node's own readings followed the simulated cell (the energy model)
    assert abs(p["battery"]["end_pct"] - pct) <= 2
    assert s["samples_lost"] == 0 and s["frames_dropped"] == 0 and s["alerts_lost"] == 0
    assert s["frames_sent"] == s["frames_stored"]
    assert s["battery_hours"] == pytest.approx(50 / s["avg_current_ma"], abs=0.01)


def test_sim_refuses_an_unknown_fault(sim):
    r, _ = sim("--faults", "meteor")
    assert r.returncode == 2 and "unknown fault meteor" in r.stderr


def _node_root(tmp_path, main_src):
    (tmp_path / "boot.py").write_text("import machine\nprint('boot', machine.reset_cause())\n")
    (tmp_path / "main.py").write_text(main_src)
    return str(tmp_path)


HANGS_AFTER_FIRST_BOOT = """import machine, time, esp32
nvs = esp32.NVS('t')
try:
    n = nvs.get_i32('boots')
except OSError:
    n = 0
nvs.set_i32('boots', n + 1)
nvs.commit()
wdt = machine.WDT(timeout=3000)
if n == 0:
    while True:          # a hung first boot: never feeds the watchdog
        time.sleep_ms(500)
while True:
    wdt.feed()
    time.sleep_ms(1000)
"""


def test_watchdog_recovers_a_hung_firmware_on_cpython(tmp_path):
    from tools import hostshims
    hostshims.install()
    from tools.vm import node
    logs = []
    s = node.run(_node_root(tmp_path, HANGS_AFTER_FIRST_BOOT), 20, log=logs.append)
    assert s["resets"] == [3] and s["wdt_resets"] == 1 and s["boots"] == 2
    assert any("reset (cause 3" in ln for ln in logs)


def test_watchdog_recovers_a_hung_firmware_on_micropython(tmp_path):
    from tools.sim import run_micropython_node
    s = run_micropython_node(_node_root(tmp_path, HANGS_AFTER_FIRST_BOOT), 20)
    assert s["resets"] == [3] and s["wdt_resets"] == 1 and s["boots"] == 2


def test_firmware_exception_halts_at_the_repl_without_a_crash_loop(tmp_path):
    from tools.sim import run_micropython_node
    root = _node_root(tmp_path, "raise ValueError('bad config')\n")
    s = run_micropython_node(root, 5)
    assert s["crashes"] == 1 and s["resets"] == [] and s["boots"] == 1


def test_the_frozen_firmware_runs_within_its_heap_budget(sim):
    """manifest.py's build, frozen into the 32-bit 1.27 binary: the
    firmware's bytecode and names stay in flash, and the node, TLS uplink
    up, stays within 48 KB of the ESP32's 112 KB GC heap."""
    r, s = sim("--duration", "35", "--frozen", "--power-save", "off")
    assert r.returncode == 0, r.stdout + r.stderr
    assert s["vm"] == "micropython 1.27.0 unix 32-bit frozen" and s["heap_cap"] == "112K"
    assert s["firmware_layout"].startswith("frozen")
    assert 0 < s["peak_heap_bytes"] <= 48 * 1024
    assert s["frames_sent"] >= 7 and s["frames_sent"] == s["frames_stored"]
    assert s["crashes"] == 0 and s["samples_lost"] == 0


def test_frozen_is_a_micropython_layout(sim):
    r, _ = sim("--runtime", "cpython", "--frozen", timeout=60)
    assert r.returncode == 2 and "--frozen" in r.stderr
