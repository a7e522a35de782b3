"""`make sim`: the real boot.py -> main.py on a simulated node, both runtimes."""
import json
import subprocess
import sys

import pytest

from tools.paths import ROOT


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_sim_runs_the_firmware_and_writes_the_summary(tmp_path, runtime):
    out = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, "-m", "tools.sim", "--runtime", runtime,
                        "--duration", "35", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "vitalnode boot: reset cause power-on" in lines
    beats = [l for l in lines if l.startswith("vitalnode: up ")]
    assert len(beats) == 3  # at 10, 20, 30 s
    assert "vitalnode: sensor MAX86150" in lines
    n = int(beats[-1].split("samples ")[1].split(",")[0])
    assert 30 * 200 - 17 <= n <= 30 * 200  # 200 sps, drained at least every 17 samples
    assert "lost 0, finger on, leads on, hr " in beats[-1]
    hr = int(beats[-1].split("hr ")[1].split(" bpm")[0])
    assert 60 <= hr <= 90  # MIT-BIH 100: 75 bpm on average
    assert "spo2 97 %, alerts 0x00" in beats[-1]  # the sim's default SpO2
    s = json.loads(out.read_text())
    assert s["runtime"] == runtime and s["sim_seconds"] == 35
    assert s["crashes"] == 0 and s["resets"] == [] and s["boots"] == 1
    assert s["wall_seconds"] > 0
    assert s["sensor_samples_dropped"] == 0 and s["sensor_samples_produced"] >= 35 * 200 - 20
    if runtime == "micropython":
        assert 0 < s["peak_heap_bytes"] < 128 * 1024


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
    assert any("reset (cause 3" in l for l in logs)


def test_watchdog_recovers_a_hung_firmware_on_micropython(tmp_path):
    from tools.sim import run_micropython_node
    s = run_micropython_node(_node_root(tmp_path, HANGS_AFTER_FIRST_BOOT), 20, "128K")
    assert s["resets"] == [3] and s["wdt_resets"] == 1 and s["boots"] == 2


def test_firmware_exception_halts_at_the_repl_without_a_crash_loop(tmp_path):
    from tools.sim import run_micropython_node
    root = _node_root(tmp_path, "raise ValueError('bad config')\n")
    s = run_micropython_node(root, 5, "128K")
    assert s["crashes"] == 1 and s["resets"] == [] and s["boots"] == 1
