"""`make ota-push` on a node (issue 19 section 5: sampling and detection go
on during any download), deployed - the .mpy files `make deploy` and
provisioning leave on its flash, the layout every installed slot has -
and frozen. The node runs on the 32-bit
MicroPython 1.27 unix port under the chip's 112 KB heap, against the real
mosquitto and gateway and a real update server, on the virtual clock:

1. the app runs for a while (slot a);
2. tools/ota/push.py's sequence: a soft reset into the REPL (boot.py only,
   the app's watchdog still running), firmware/otapush.run(url) - the
   leads come off meanwhile - then machine.reset();
3. the trial boot of slot b, which the app confirms after its health check.

One VM process per boot, as tools/soak.py runs them (a reset wipes RAM).
"""
import json
import tempfile
import time
from pathlib import Path

import pytest

from tools import soak
from tools.ota import server
from tools.sim import runner
from tools.sim.world import World

PUSH_AT_MS = 20000  # the push's soft reset: the app ran this long


def _boots(tmp_path, layout):
    """Run the three boots; returns (node lines per boot, summaries, gateway rows)."""
    world = World(tmp_path / "world", 1, log=lambda s: None, site_dir=tmp_path / "site")
    world.start()
    lines = [[]]
    ev = soak.Events(lambda s: lines[-1].append(s), world)
    srv = None
    try:
        good, _ = soak.bundles(Path(tempfile.mkdtemp(dir=tmp_path)),
                               world.site_dir / "ota_private.pem", lambda s: None)
        srv, url = server.serve_in_thread(good)
        base = dict(world.node_spec(0))
        image = base.pop("image")
        cfg = json.loads(image["files"]["config.json"])
        cfg["alerts"] = dict(cfg.get("alerts") or {}, lead_off_on_s=0)  # raised at once
        image["files"]["config.json"] = json.dumps(cfg)
        base.update(sensor=runner.sensor_spec("max86150", "100", "01", 97.0))
        tree = runner.device_tree(layout)
        flash = tmp_path / "flash.bin"
        t, cause, out = 0.0, None, []
        # the leads come off 1 s into the push's boot, for 1.5 s: the download's time
        for dur, push, faults in ((PUSH_AT_MS / 1000, None, []),
                                  (120, url, [{"kind": "leadoff", "at": 1, "until": 2.5}]),
                                  (60, None, [])):
            spec = dict(base, faults=faults, start_ms=int(t * 1000), segment=True)
            if not out:
                spec["nvs"] = runner.deploy_nvs(layout)
            else:
                spec.update(snapshot=ev.snapshot, nvs={}, boot_cause=cause, push=push)
            ev.reset = None
            node = runner.UnixNode(tree, "%.3f" % dur, runner.CHIP_HEAP, spec, ev.line,
                                   world.broker_fault, layout=layout,
                                   image=image if not out else None,
                                   flash_from=flash if out else None, flash_to=flash)
            out.append(node.start().wait())
            lines.append([])
            if ev.reset is not None:
                cause, ms = ev.reset
                t = ms / 1000.0
            else:
                t, cause = t + dur, None
        deadline = time.monotonic() + 15
        rows = []
        while time.monotonic() < deadline:  # the gateway stores what the broker holds
            rows = world.gw.gw.rows(device=world.devices[0])
            if any(r["kind"] == "alert" for r in rows):
                break
            time.sleep(0.5)
        return lines[:3], out, rows
    finally:
        if srv is not None:
            srv.shutdown()
        world.stop()


@pytest.mark.parametrize("layout", ["deployed", "frozen"])
def test_a_node_samples_and_detects_through_its_ota_push(tmp_path, layout):
    lines, runs, rows = _boots(tmp_path, layout)
    from alerts import LEAD_OFF  # lib/alerts.py (on the path through tools.gateway.core)
    app, push, trial = lines
    # the push's boot: the download installed, then machine.reset()
    assert runs[1]["crashes"] == 0 and runs[1]["resets"] == [5, 2], "\n".join(push)
    assert not any("MemoryError" in ln or "Traceback" in ln for ln in push), push
    assert not any("not sampling" in ln for ln in push)
    ota = [ln for ln in push if ln.startswith("SIM-OTA ")]
    assert len(ota) == 1 and " installed " in ota[0], push
    t_end = int(ota[0].split()[1])
    starts = [int(ln.split()[1]) for ln in push if ln.startswith("SIM-RECSTART ")]
    assert len(starts) == 1  # the sensor started once, at the push's start
    said = [ln for ln in push if ln.startswith("vitalnode: sampled during the update: ")]
    assert len(said) == 1, push
    words = said[0].split()
    samples, lost, ecg, pulse = int(words[5]), int(words[8].rstrip(",")), int(words[10]), \
        int(words[12])
    # every sample from the sensor's start to the download's end, none lost
    assert lost == 0 and runs[1]["sensor_samples_dropped"] == 0
    assert samples >= (t_end - starts[0]) * 200 // 1000 - 40, (samples, starts, t_end)
    assert t_end - starts[0] >= 2000  # a download of some seconds, sampled throughout
    # detection ran: beats counted during the download (the pulse too while the leads were off)
    assert ecg >= 1 and pulse >= 1, said
    assert starts[0] - PUSH_AT_MS < 1000  # sampling again within a second of the soft reset
    # the alert raised during the download (no app runs there) went into the
    # outbox, and the app delivered it after the reset
    alerts = [r for r in rows if r["kind"] == "alert"]
    assert any(a["alert"] == LEAD_OFF and a["raised"] and a["at_ms"] < t_end - PUSH_AT_MS
               for a in alerts), alerts
    # the trial boots slot b and the app confirms it after its health check
    assert runs[2]["crashes"] == 0
    assert any("app slot b (trial)" in ln for ln in trial), trial
    assert any("update confirmed after the health check" in ln for ln in trial), trial
    assert sum(r.get("sensor_samples_dropped", 0) for r in runs) == 0
    print("ota-push boot (%s layout): %s; heap peak %d B, least free %d B (112 KB)"
          % (layout, said[0][len("vitalnode: "):], runs[1]["peak_heap_bytes"],
             runs[1]["min_free_heap_bytes"]))
