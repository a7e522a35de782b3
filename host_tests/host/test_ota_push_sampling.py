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
The bundles: this tree's files, the next version, unbound; on the deployed
layout, whose heap is the tight one, also bound to this node (its manifest
check reads the device ids, the download fetches the binding and checks it
with the node's key), with a manifest near its 8 KB maximum (60 files), and
bound to another device only (refused: nothing installed, the old slot
boots again).
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
OTHER = "240ac4000def"  # a device id that is not the node's
BIG_FILES = 61  # the large manifest's files (otamanifest.MAX_FILES: 64)
BIG_SLACK = 64  # ... and its JSON at most this far below MANIFEST_MAX (8 KB)


def _pad_files(files, n, room):
    """`files` and small extra ones, at least `n` files in all, with paths
    as long as makes the manifest's JSON grow by about `room` bytes (an
    entry: {"path":"..","sha256":"<64 hex>","size":N} and its comma, 98
    bytes and the path, of 64 characters at most)."""
    files = dict(files)
    extra = max(n - len(files), -(-room // (98 + 64)))
    for i in range(extra):
        path_len = min(64, room // (extra - i) - 98)  # otamanifest's paths: 64 at most
        room -= path_len + 98
        stem = "lib/vnpad/p%02d" % i
        files[stem + "x" * (path_len - len(stem) - 5) + ".json"] = b'{"pad":%2d}' % i
    return files


def _bundle(kind, out, key, device):
    """kind: "plain" (this tree's files, unbound), "bound" (to `device` and
    OTHER), "big" (unbound, its manifest near the maximum size), "other"
    (bound to OTHER only). Writes the signed bundle to `out`; returns its
    manifest's JSON size."""
    from tools.devicetree import otamanifest
    from tools.ota import bundle
    files = bundle.app_files()
    version = soak._bump(bundle.tree_version(), 1)
    devices = {"bound": [device, OTHER], "other": [OTHER]}.get(kind, [])

    def build(files):
        bundle.build(out, key, version=version, files=files, bound=bool(devices),
                     devices=devices, log=lambda s: None)
        return (out / "manifest.vnm").stat().st_size - len(otamanifest().MAGIC) - 384
    size = build(files)
    if kind == "big":
        size = build(_pad_files(files, BIG_FILES,
                                otamanifest().MANIFEST_MAX - BIG_SLACK // 4 - size))
    return size


def _boots(tmp_path, layout, kind="plain"):
    """Run the three boots; returns (node lines per boot, summaries, gateway
    rows, the manifest's JSON size, the update server's log)."""
    world = World(tmp_path / "world", 1, log=lambda s: None, site_dir=tmp_path / "site")
    world.start()
    lines = [[]]
    ev = soak.Events(lambda s: lines[-1].append(s), world)
    srv = None
    try:
        good = Path(tempfile.mkdtemp(dir=tmp_path)) / "ota"
        size = _bundle(kind, good, world.site_dir / "ota_private.pem", world.devices[0])
        served = []  # the update server's log: what the node fetched
        srv, url = server.serve_in_thread(good, registry=world.dir / "registry.sqlite",
                                          log=served.append)
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
        deadline = time.monotonic() + (15 if kind != "other" else 0)  # refused: no alert
        rows = []
        while time.monotonic() < deadline:  # the gateway stores what the broker holds
            rows = world.gw.gw.rows(device=world.devices[0])
            if any(r["kind"] == "alert" for r in rows):
                break
            time.sleep(0.5)
        return lines[:3], out, rows, size, served
    finally:
        if srv is not None:
            srv.shutdown()
        world.stop()


def _sampled_through(push, runs, beats=True):
    """The push's boot sampled (and, with `beats`, detected beats) from the
    soft reset to the download's end: returns (its SIM-OTA line's words,
    its summary line, the download's end and the sensor's start in ms,
    lib/alerts' LEAD_OFF)."""
    from alerts import LEAD_OFF  # lib/alerts.py (on the path through tools.gateway.core)
    assert runs[1]["crashes"] == 0 and runs[1]["resets"] == [5, 2], "\n".join(push)
    assert not any("MemoryError" in ln or "Traceback" in ln for ln in push), push
    assert not any("not sampling" in ln for ln in push)
    ota = [ln for ln in push if ln.startswith("SIM-OTA ")]
    assert len(ota) == 1, push
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
    # detection ran: beats counted during the download (the pulse too while the leads were off)
    assert not beats or (ecg >= 1 and pulse >= 1), said
    assert starts[0] - PUSH_AT_MS < 1000  # sampling again within a second of the soft reset
    return ota[0].split(), said[0], t_end, starts[0], LEAD_OFF


def _report(what, runs, said):
    print("ota-push boot (%s): %s; heap peak %s B, least free %s B (112 KB)"
          % (what, said[len("vitalnode: "):], runs[1]["peak_heap_bytes"],
             runs[1]["min_free_heap_bytes"]))  # None: the boot ended before a heap reading


@pytest.mark.parametrize("layout,kind", [("deployed", "plain"), ("frozen", "plain"),
                                         ("deployed", "bound"), ("deployed", "big")])
def test_a_node_samples_and_detects_through_its_ota_push(tmp_path, layout, kind):
    lines, runs, rows, size, served = _boots(tmp_path, layout, kind)
    app, push, trial = lines
    # the push's boot: the download installed, then machine.reset()
    ota, said, t_end, start, LEAD_OFF = _sampled_through(push, runs)
    assert ota[2] == "installed", push
    assert t_end - start >= 2000  # a download of some seconds, sampled throughout
    binding = [ln for ln in served if "binding/" in ln]
    if kind == "bound":  # this node's binding fetched (and checked with its key)
        assert len(binding) == 1 and " -> 32 bytes " in binding[0], served
    else:
        assert not binding, served
    if kind == "big":
        from tools.devicetree import otamanifest
        assert otamanifest().MANIFEST_MAX - BIG_SLACK <= size <= otamanifest().MANIFEST_MAX
        assert sum(" files/" in ln for ln in served) >= BIG_FILES, served
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
    _report("%s layout, %s bundle, %d B manifest" % (layout, kind, size), runs, said)


def test_a_bundle_bound_to_another_device_is_refused_and_sampling_goes_on(tmp_path):
    lines, runs, rows, size, served = _boots(tmp_path, "deployed", "other")
    app, push, after = lines
    # refused once the signed manifest is checked (some 50 ms: too short for a beat)
    ota, said, t_end, start, _ = _sampled_through(push, runs, beats=False)
    assert ota[2:4] == ["refused", "binding"] and OTHER in " ".join(ota), push
    assert any("security event" in ln and "ota-reject" in ln and "binding" in ln for ln in push)
    # nothing fetched beyond the manifest, nothing installed: the reset boots slot a again
    assert [ln.split()[1] for ln in served] == ["manifest.vnm"], served
    assert runs[2]["crashes"] == 0
    assert any("app slot a" in ln for ln in after), after
    assert not any("(trial)" in ln or "update confirmed" in ln for ln in after), after
    assert sum(r.get("sensor_samples_dropped", 0) for r in runs) == 0
    _report("deployed layout, bundle bound to another device", runs, said)
