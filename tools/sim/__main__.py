"""`make sim`: the real boot.py -> main.py on simulated nodes, end to end.

    python -m tools.sim [--duration 600] [--runtime micropython|cpython]
        [--record 100] [--ppg 01] [--chip max86150|max30102] [--realtime]
        [--faults none|all|broker,wifi,finger,motion] [--nodes 1] [--heap 112K]
        [--frozen] [--vm unix|unix64] [--timing typical|worst] [--outage SECONDS]
        [--battery-pct PCT [--battery-mah 500]]
        [--ward [--ward-port 8443]] [--workdir build/sim] [--dev-site build/dev-site]
        [--power-save on|off]

Provisions each node (registry, key, config), starts mosquitto (TLS, ACL)
and the gateway, boots the firmware on the chip's own MicroPython - 1.27.0,
built 32-bit for this host from ../shared/micropython (tools/mpbuild.py) -
under the ESP32's 112 KB GC heap, with its flash as real LittleFS, the
shims and the virtual clock (tools/vm/node.py), feeds the simulated sensor
from MIT-BIH (ECG) and BIDMC (PPG) recordings, prints the node's console
and live progress, then scores and reports: build/sim/summary.json, the
FHIR bundle and a PNG. Exit status 1 if a node crashed or lost data.
Everything a run makes is under --workdir (default: the folder of --out,
build/sim), so runs in different folders do not meet; the development site
(CA, OTA key) is made once in --dev-site (default build/dev-site).
--power-save off provisions every node with "power": {"save": false} in
its config.json (the firmware's power saving off: `make bench`'s "always
on" run); on, the default, is the config's default (firmware/config.py).
Each node's PNG ends with its supply current over the run, from the power
meter's timeline (one bin per --duration/600 s, at least 1 s), also
written as current-<device>.csv.
"""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from tools.paths import BUILD, ROOT, missing_data
from tools.power import model as power
from tools.sim import report, runner
from tools.sim.world import World
from tools.vm import launch

# fault scenarios: (kind, start as a fraction of the run, length in s);
# every fault ends well before the run does, so the queue can drain
FAULTS = {"broker": (0.20, 45), "wifi": (0.40, 30), "finger": (0.55, 20), "motion": (0.70, 15)}


OUTAGE_AT = 600  # a long outage (--outage) starts at minute 10
TIMELINE_BINS = 600  # the current-over-time panel: at most this many bins a run


TIMELINE_BIN_MAX_S = 1000  # the meter's bins stay small ints (tools/shims/powerstate.py)


def timeline_spec(duration):
    """[bins, bin s] for the power meter's timeline: 1 s bins up to 600 s,
    then as wide as keeps 600 bins (whole seconds), plus one for a short
    last bin; at most 1000 s wide, so a run past 600,000 s is recorded for
    its first 601,000 s (the summary's current_timeline says "full")."""
    bin_s = min(TIMELINE_BIN_MAX_S, max(1, -(-duration // TIMELINE_BINS)))
    return [min(TIMELINE_BINS + 1, -(-duration // bin_s) + 1), bin_s]
# the nodes' battery block (firmware/config.py): the default wiring, VBAT / 2 on GPIO35
BATTERY = {"adc_pin": 35, "divider": 2.0}
# CHIP=max30102 has no ECG: its beats are the pulse peaks of the BIDMC record, whose
# annotations are breaths, not beats; MIT-BIH's beats are another patient's
NO_ECG_SCORE = ("the MAX30102 has no ECG: its beats are pulse peaks of the BIDMC PPG, and "
                "the only beat annotations (MIT-BIH) are another patient's; the pulse rate is "
                "in the trend, scored by make bench (ppg.bidmc)")


def fault_plan(names, duration, outage=0):
    plan = []
    if outage:  # the broker unreachable: connects and reads hang until they time out
        plan.append({"kind": "blackhole", "at": OUTAGE_AT, "until": OUTAGE_AT + outage})
    for k in names:
        frac, length = FAULTS[k]
        at = int(duration * frac)
        length = min(length, max(1, int(duration * 0.1)))
        plan.append({"kind": k, "at": at, "until": at + length})
    return plan


class _Parser(argparse.ArgumentParser):
    """A mistake is one line on stderr and exit status 2 (no usage block)."""

    def error(self, message):
        sys.stderr.write("sim: error: %s\n" % message)
        sys.exit(2)


def _args(argv):
    ap = _Parser(prog="python -m tools.sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", choices=["micropython", "cpython"], default="micropython")
    ap.add_argument("--duration", type=int, default=600, help="simulated seconds (default 600)")
    ap.add_argument("--record", default="100", help="MIT-BIH record for the ECG (default 100)")
    ap.add_argument("--ppg", default="01", help="BIDMC record for the PPG (default 01)")
    ap.add_argument("--chip", choices=["max86150", "max30102"], default="max86150")
    ap.add_argument("--spo2", type=float, default=97.0, help="SpO2 the optics model produces")
    ap.add_argument("--realtime", action="store_true", help="pace the node at real time")
    ap.add_argument("--faults", default="none",
                    help="none, all, or a comma list of %s" % ", ".join(FAULTS))
    ap.add_argument("--nodes", type=int, default=1, help="nodes against one broker and gateway")
    ap.add_argument("--heap", default=runner.CHIP_HEAP,
                    help="the node's GC heap (default 112K, the ESP32 port's design point)")
    ap.add_argument("--frozen", action="store_true",
                    help="the firmware frozen into the MicroPython binary by manifest.py, as a "
                         "firmware built from it holds it (default: .mpy files on the flash, "
                         "as make deploy puts them)")
    ap.add_argument("--vm", choices=["unix", "unix64"], default="unix",
                    help="unix: MicroPython 1.27.0 32-bit (default); unix64: the 64-bit PyPI "
                         "wheel, for comparison")
    ap.add_argument("--timing", choices=["typical", "worst"], default="typical",
                    help="how long the chip's blocking calls take (flash, NVS, I2C, DNS, TLS): "
                         "datasheet typical (default) or worst case; docs/timing.md")
    ap.add_argument("--outage", type=int, default=0, metavar="SECONDS",
                    help="the broker unreachable from minute 10 for SECONDS (a long outage: "
                         "summary gains outage_seconds, frames_dropped_by_policy, drain_seconds)")
    ap.add_argument("--power-save", choices=["on", "off"], default="on",
                    help="the nodes' config power.save (docs/power.md): on (the default, as a "
                         "node provisioned without a power block) - light sleep and uplink "
                         "batches; off - awake, the radio always connected")
    ap.add_argument("--battery-pct", type=float, default=None, metavar="PCT",
                    help="a battery monitor on each node (a battery block in its config) and a "
                         "simulated LiPo behind its ADC pin, PCT %% charged at the start (0-100): "
                         "it drains by the energy model's current (default: no battery monitor)")
    ap.add_argument("--battery-mah", type=int, default=500, metavar="MAH",
                    help="the cell's capacity: the config's capacity_mah and battery_hours' "
                         "(default 500)")
    ap.add_argument("--progress", type=int, default=30, help="progress line every N simulated s")
    ap.add_argument("--unprovisioned", action="store_true",
                    help="boot nodes with no key and no config (their safe state)")
    ap.add_argument("--out", help="the summary (default WORKDIR/summary.json, build/sim/summary.json)")
    ap.add_argument("--workdir", help="the run's broker, registry, store, PNG and FHIR bundle "
                                      "(default: the folder of --out)")
    ap.add_argument("--dev-site", help="the development site: CA and OTA key, made there once "
                                       "(default build/dev-site)")
    ap.add_argument("--ward", action="store_true",
                    help="the ward web app up during the run (implies --realtime)")
    ap.add_argument("--ward-port", type=int, default=8443, help="its HTTPS port (default 8443)")
    a = ap.parse_args(argv)
    if a.out is None:
        a.out = str(Path(a.workdir) / "summary.json" if a.workdir else BUILD / "sim" / "summary.json")
    a.workdir = Path(a.workdir) if a.workdir else Path(a.out).resolve().parent
    if a.ward:
        a.realtime = True
    names = [] if a.faults == "none" else list(FAULTS) if a.faults == "all" else a.faults.split(",")
    bad = [n for n in names if n not in FAULTS]
    if bad:
        ap.error("unknown fault %s (choose from %s)" % (", ".join(bad), ", ".join(FAULTS)))
    if not 1 <= a.nodes <= 8:
        ap.error("--nodes: 1 to 8")
    if a.duration < 1:
        ap.error("--duration (DURATION=) %d: the simulated seconds to run, 1 or more" % a.duration)
    # the recordings the sensor replays: refused when absent, never replaced by a
    # synthetic signal under the record's name
    for kind, name, opt in ((("mitdb", a.record, "--record (RECORD=)"),) * (a.chip != "max30102")
                            + (("bidmc", a.ppg, "--ppg (PPG=)"),)):
        why = missing_data(kind, name)
        if why and why.startswith("no "):  # no folder at all: not this record's fault
            ap.error(why)
        if why:
            ap.error("%s %s: %s" % (opt, name, why))
    if a.frozen and a.runtime != "micropython":
        ap.error("--frozen models a MicroPython build: only with --runtime micropython")
    if a.frozen and a.vm != "unix":
        ap.error("--frozen is the 32-bit 1.27 build with the firmware frozen in: not with --vm %s"
                 % a.vm)
    if a.outage < 0 or (a.outage and a.duration < OUTAGE_AT + a.outage + 60):
        ap.error("--outage: the run must last past minute 10 + the outage + 60 s (--duration %d)"
                 % (OUTAGE_AT + max(a.outage, 0) + 60))
    if a.outage and a.runtime != "micropython":
        ap.error("--outage needs the MicroPython node (its network is simulated)")
    if a.battery_pct is not None and not 0 <= a.battery_pct <= 100:
        ap.error("--battery-pct (BATTERY=): 0 to 100, got %g" % a.battery_pct)
    if not 50 <= a.battery_mah <= 10000:
        ap.error("--battery-mah: 50 to 10000 (config.json's capacity_mah), got %d" % a.battery_mah)
    if not re.fullmatch(r"[1-9][0-9]*[KkMm]?", a.heap):
        ap.error("--heap: a size such as 112K")
    a.fault_names = names
    a.layout = "frozen" if a.frozen else "deployed"
    return a


class Live:
    """Console of every node plus progress lines, serialised."""

    def __init__(self, devices, world):
        self.lock = threading.Lock()
        self.multi = len(devices) > 1
        self.world = world
        self.starts = {d: [] for d in devices}
        self.recovery = {}  # dev: [("drained"|"recover", fault kind, end ms, ms or -1)]

    def line(self, dev, text):
        if self.world is not None and self.world.node_line(text):
            return
        if text.startswith("SIM-RECSTART "):
            self.starts[dev].append(int(text.split()[1]))
            return
        if text.startswith("SIM-PROGRESS "):
            text = self._progress(dev, json.loads(text[len("SIM-PROGRESS "):]))
        elif text.startswith("SIM-EVENT "):
            _, ms, kind, edge = text.split()
            text = "sim: t=%d s fault %s %s" % (int(ms) // 1000, kind, edge)
        elif text.startswith("SIM-FAULT "):
            return
        elif text.startswith(("SIM-DRAINED ", "SIM-RECOVER ")):
            head, kind, end, t = text.split()
            self.recovery.setdefault(dev, []).append((head[4:].lower(), kind, int(end), int(t)))
            return
        elif text.startswith(("SIM-BOOTSTAT ", "SIM-SNAPSHOT ")):
            return
        with self.lock:  # not print(): a CPython node's print() is routed here
            sys.stdout.write(("[%s] " % dev if self.multi else "") + text + "\n")
            sys.stdout.flush()

    def _progress(self, dev, st):
        hr = "%d" % round(st["hr_x10"] / 10) if st.get("hr_x10", 0) > 0 else "--"
        sp = "%d %%" % round(st["spo2_x10"] / 10) if st.get("spo2_x10", 0) > 0 else "--"
        stored = self.world.gw.counts(dev).get("stored", 0) if self.world else 0
        return ("sim: t=%4d s  HR %s  SpO2 %s  alerts 0x%02x  | node sent %d, queued %d  "
                "| gateway stored %d" % (st["t"], hr, sp, st.get("alerts", 0), st.get("sent", 0),
                                         st.get("queued", 0), stored))


def _run_nodes(a, world, live, spec_base):
    out = {}
    devs = world.devices
    specs = []
    for i in range(len(devs)):
        s = dict(spec_base, **world.node_spec(i))
        s["faults"] = fault_plan(a.fault_names, a.duration, a.outage)
        s["power_timeline"] = timeline_spec(a.duration)
        if a.unprovisioned:
            del s["image"]
        specs.append(s)
    if a.runtime == "cpython":
        for dev, s in zip(devs, specs):  # one board per process: one after the other
            out[dev] = runner.run_cpython_node(a.duration, s, lambda t, d=dev: live.line(d, t),
                                               world.broker_fault)
            out[dev]["vm"] = "cpython %d.%d with shims" % sys.version_info[:2]
        return out
    tree = runner.device_tree(a.layout)
    nvs = runner.deploy_nvs(a.layout)
    vm = "frozen" if a.frozen else a.vm
    nodes = []
    try:
        for dev, s in zip(devs, specs):
            s = dict(s, nvs=nvs)
            image = s.pop("image", None)
            nodes.append(runner.UnixNode(tree, a.duration, a.heap, s,
                                         lambda t, d=dev: live.line(d, t), world.broker_fault,
                                         layout=a.layout, image=image, vm=vm))
    except BaseException:
        for n in nodes:
            n.run.close()
        raise
    for n in nodes:
        n.start()
    try:
        for dev, n in zip(devs, nodes):
            out[dev] = n.wait()
    except BaseException:  # Ctrl-C, or a node that died: no VM is left running
        for n in nodes:
            n.stop()
        raise
    return out


def _node_report(a, world, live, dev, s, spec):
    rows = world.gw.gw.rows(device=dev)
    node = s.get("node", {})
    peaks = node.pop("peaks", {})
    counts = world.gw.counts(dev)
    end_ms = a.duration * 1000
    if a.chip == "max30102":
        sc = {"beat_score_skipped": NO_ECG_SCORE}
    else:
        sc = report.score([r for r in rows if r["kind"] == "vitals"], live.starts[dev], end_ms,
                          a.record) if spec["sensor"].get("ecg") else {}
    r = {"device": dev, "boots": s["boots"], "resets": s["resets"], "crashes": s["crashes"],
         "frames_sent": node.get("sent", 0),
         # distinct frames that passed the gateway's checks (a resend verifies again
         # and is removed as a duplicate: counted in frames_resent)
         "frames_verified": counts.get("stored", 0),
         "frames_resent": node.get("resent", 0), "duplicates_removed": counts.get("duplicate", 0),
         "frames_stored": counts.get("stored", 0),
         "frames_refused": {k: v for k, v in counts.items() if k not in ("stored", "duplicate")},
         "frames_queued_at_end": node.get("queued"), "frames_dropped": node.get("dropped", 0),
         # of those, published and awaiting the gateway's acknowledgement when the run stopped
         "frames_in_flight_at_end": node.get("in_flight", 0),
         "alerts": sum(1 for x in rows if x["kind"] == "alert" and x["raised"]),
         "alert_events_node": node.get("alert_events", 0), "alerts_lost": node.get("alerts_lost", 0),
         "samples_lost": s["sensor_samples_dropped"], "samples_lost_node": node.get("lost", 0),
         "samples": s["sensor_samples_produced"],
         "timing": s.get("timing"),
         "pump_latency_ms_max": s.get("pump_latency_ms_max"),
         "fifo_fill_max": s.get("fifo_fill_max"), "fifo_fill_max_ms": s.get("fifo_fill_max_ms"),
         "first_sample_lost_ms": s.get("first_sample_lost_ms"),
         "scheduler_dropped": s.get("scheduler_dropped"), "net": s.get("net"),
         "long_calls": s.get("long_calls"), "sample_losses": s.get("sample_losses"),
         "battery": s.get("battery"),
         "peak_heap_bytes": s.get("peak_heap_bytes"), "peak_heap_at_s": s.get("peak_heap_at_s"),
         "min_free_heap_bytes": s.get("min_free_heap_bytes"),
         "harness_heap_bytes": s.get("harness_heap_bytes"), "vm": s.get("vm"),
         "sensor_starts_ms": live.starts[dev],
         # every beat the gateway stored, in the node's ms (a save on/off comparison)
         "beats_ms": sorted(b[0] for x in rows if x["kind"] == "vitals" for b in x["beats"])}
    r.update(sc)
    if s.get("battery"):  # what the gateway stored of the node's battery
        from alerts import NAMES  # lib/alerts.py (on the path through tools.gateway.core)
        status = [x for x in rows if x["kind"] == "status"]
        r["battery_gateway"] = {
            "alerts": [[NAMES[x["alert"]], x["raised"], x["seq"]] for x in rows
                       if x["kind"] == "alert" and NAMES[x["alert"]].startswith("battery_")],
            "last_status": [status[-1]["seq"], status[-1]["battery_mv"], status[-1]["battery_pct"]]
            if status else None,
            "last_seq": max((x["seq"] for x in rows), default=None),
            "deep_sleep_s": round(s["power"]["states_ms"]["deep_sleep"] / 1000, 1)}
    if not s["resets"]:  # the node's clock restarts at a reset: one boot only
        al, vi = report.latencies(rows, world.epoch)
        r["alert_latency_ms_p95"] = round(report.p95(al)) if al else None
        r["vitals_latency_s_max"] = round(max(vi), 1) if vi else None
    points = power.timeline(s["power"]) if s.get("power") else None
    if points:
        csv = a.workdir / ("current-%s.csv" % dev)
        csv.write_text("start_s,length_s,supply_ma\n"
                       + "".join("%g,%g,%g\n" % p for p in points))
        r["current_timeline"] = {"csv": _shown(csv), "bins": len(points),
                                 "bin_s": timeline_spec(a.duration)[1],
                                 "mean_ma": round(power.mean_ma(points), 2),
                                 "full": s["power"]["timeline"]["full"]}
    png = a.workdir / ("waveforms-%s.png" % dev)
    report.plot(png, dev, rows, live.starts[dev], spec["sensor"], peaks,
                ("BIDMC %s on node %s" % (a.ppg, dev)) if a.chip == "max30102" else
                "MIT-BIH %s + BIDMC %s on node %s" % (a.record, a.ppg, dev),
                fifo={"fill_max": s.get("fifo_fill_max"), "fill_max_ms": s.get("fifo_fill_max_ms"),
                      "lost_ms": s.get("first_sample_lost_ms")},
                current={"points": points, "capacity_mah": power.CAPACITY_MAH,
                         "full": bool(points) and s["power"]["timeline"]["full"]})
    r["png"] = _shown(png)
    return r


def _total(per):
    t = {}
    for k in ("beats_reference", "beats_detected", "tp", "fn", "fp", "frames_sent", "frames_verified",
              "frames_stored", "frames_resent", "duplicates_removed", "frames_dropped", "alerts", "alerts_lost",
              "samples_lost", "samples_lost_node", "crashes"):
        t[k] = sum((p.get(k) or 0) for p in per)
    tp, fn, fp = t.pop("tp"), t.pop("fn"), t.pop("fp")
    t["se"] = round(100.0 * tp / (tp + fn), 2) if tp + fn else None
    t["ppv"] = round(100.0 * tp / (tp + fp), 2) if tp + fp else None
    t["boots"] = sum(p["boots"] for p in per)
    t["resets"] = [c for p in per for c in p["resets"]]
    t["frames_queued_at_end"] = sum((p.get("frames_queued_at_end") or 0) for p in per)
    t["frames_in_flight_at_end"] = sum((p.get("frames_in_flight_at_end") or 0) for p in per)
    lat = [p["pump_latency_ms_max"] for p in per if p.get("pump_latency_ms_max") is not None]
    t["pump_latency_ms_max"] = max(lat) if lat else None
    fill = [p["fifo_fill_max"] for p in per if p.get("fifo_fill_max") is not None]
    t["fifo_fill_max"] = max(fill) if fill else None
    heaps = [p["peak_heap_bytes"] for p in per if p.get("peak_heap_bytes") is not None]
    t["peak_heap_bytes"] = max(heaps) if heaps else None
    free = [p["min_free_heap_bytes"] for p in per if p.get("min_free_heap_bytes") is not None]
    t["min_free_heap_bytes"] = min(free) if free else None
    for k, f in (("alert_latency_ms_p95", max), ("vitals_latency_s_max", max)):
        v = [p[k] for p in per if p.get(k) is not None]
        t[k] = f(v) if v else None
    return t


def main(argv=None):
    from tools.mpbuild import BuildError
    signal.signal(signal.SIGINT, _interrupted)
    try:
        return _main(argv)
    except BuildError as e:
        print("sim: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the nodes, broker and gateway are stopped by now
        print("sim: interrupted: nodes, broker and gateway stopped; no summary written",
              file=sys.stderr)
        return 130


def _interrupted(*_):
    """The first Ctrl-C stops the run; the clean-up after it is not interrupted again."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _main(argv=None):
    a = _args(argv)
    spec_base = {"sensor": runner.sensor_spec(a.chip, a.record, a.ppg, a.spo2),
                 "progress_s": a.progress, "pace": 1.0 if a.realtime else 0,
                 "timing": a.timing}
    battery = None if a.battery_pct is None else dict(BATTERY, capacity_mah=a.battery_mah)
    if battery:  # the cell on the board: the same wiring as the config says
        spec_base["battery"] = dict(battery, pct=a.battery_pct, price=power.prices(a.chip))
    world = World(a.workdir / "world", a.nodes, log=print, site_dir=a.dev_site,
                  power_save=a.power_save == "on", battery=battery)
    demo = None
    try:
        world.start()
        if a.ward:
            from tools.wardapp.demo import start_demo
            demo = start_demo(world.gw.gw.store, world.dir / "registry.sqlite", world.site_dir,
                              world.devices, world.dir / "app", port=a.ward_port)
        live = Live(world.devices, world)
        print("sim: %d simulated seconds on %s, %d node(s), %s, faults: %s, power saving %s"
              % (a.duration, a.runtime, a.nodes, "BIDMC %s (MAX30102: PPG only)" % a.ppg
                 if a.chip == "max30102" else "MIT-BIH %s + BIDMC %s" % (a.record, a.ppg),
                 ", ".join("%s %d-%d s" % (f["kind"], f["at"], f["until"])
                           for f in fault_plan(a.fault_names, a.duration)) or "none",
                 a.power_save), flush=True)
        t0 = time.monotonic()  # the nodes' run only: set-up and report are not simulation
        results = _run_nodes(a, world, live, spec_base)
        wall = time.monotonic() - t0
        sent = {d: (s.get("node") or {}).get("sent", 0) for d, s in results.items()}
        if not world.wait_delivered(sent):
            print("sim: the gateway did not receive every frame the broker accepted", flush=True)
        per = [_node_report(a, world, live, d, results[d], spec_base) for d in world.devices]
        gaps = {d: report.vitals_gap(world.gw.gw.rows(device=d, kind="vitals")) for d in world.devices}
        bundle = a.workdir / "fhir-bundle.json"
        n_obs = report.fhir_bundle(world.gw.gw.store, bundle)
        if demo is not None:
            print("sim: done; the ward app stays up until Ctrl-C", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if demo is not None:
            demo.stop()
        world.stop()
    s = {"runtime": a.runtime, "sim_seconds": a.duration, "wall_seconds": round(wall, 2),
         "speed_x_realtime": round(a.duration / wall, 1), "record": a.record, "ppg_record": a.ppg,
         "chip": a.chip, "nodes": a.nodes,
         "faults": fault_plan(a.fault_names, a.duration, a.outage),
         "vm": per[0]["vm"] if a.runtime == "cpython" else "%s%s" % (
             launch.describe("frozen" if a.frozen else a.vm), "" if a.frozen else " deployed"),
         "heap_cap": a.heap if a.runtime == "micropython" else None,
         "timing": a.timing, "power_save": a.power_save == "on",
         "firmware_layout": "frozen (manifest.py in the binary)" if a.frozen
         else "deployed .mpy files on the flash"}
    s.update(_total(per))
    # avg_current_ma, battery_hours (for the config's capacity_mah), shares
    s.update(power.sim_report(per, results, world.devices, capacity_mah=a.battery_mah))
    if a.chip == "max30102":
        s["beat_score_skipped"] = NO_ECG_SCORE
        for k in ("beats_reference", "beats_detected", "se", "ppv"):
            s[k] = None
    s.update({"fhir_bundle": _shown(bundle), "fhir_observations": n_obs,
              "png": per[0]["png"], "per_node": per})
    if a.outage:
        s.update(_outage(a, s, live, gaps))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(s, f, indent=2)
    _print_summary(s)
    print(power.summary_line(s))
    print("written", _shown(a.out))
    if a.outage:  # frames dropped by the outbox's policy are the expected cost of it
        missed = [k for k, (ok, _) in s["outage_targets"].items() if not ok]
        return 1 if missed or s["samples_lost"] else 0
    lost = s["samples_lost"] + s["frames_dropped"] + s["alerts_lost"]
    return 1 if s["crashes"] or lost else 0


def _shown(path):
    """A path as reports name it: relative to the checkout when inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _outage(a, s, live, gaps):
    """Issue 18's long-outage figures and targets: the queue drained within
    10 min of the broker's return, no alert lost, no MemoryError (no crash),
    and the gap at the gateway a gap, not filled."""
    drains = [(t - end) / 1000.0 if t >= 0 else None
              for recs in live.recovery.values() for what, kind, end, t in recs
              if what == "drained" and kind == "blackhole"]
    drain = None if not drains or None in drains else max(drains)
    gap = max((g for g in gaps.values() if g is not None), default=None)
    out = {"outage_seconds": a.outage, "outage_at_s": OUTAGE_AT,
           "frames_dropped_by_policy": s["frames_dropped"], "drain_seconds": drain,
           "gateway_gap_s_max": gap}
    out["outage_targets"] = {
        "no crash (MemoryError)": [s["crashes"] == 0, s["crashes"]],
        "alerts_lost == 0": [s["alerts_lost"] == 0, s["alerts_lost"]],
        "drain_seconds <= 600": [drain is not None and drain <= 600, drain],
    }
    return out


def _print_summary(s):
    pct = lambda v: "--" if v is None else "%.2f %%" % v  # noqa: E731
    print("sim summary: %d simulated s in %.1f wall s (%.0fx real time, %s), %d node(s)"
          % (s["sim_seconds"], s["wall_seconds"], s["speed_x_realtime"], s["runtime"], s["nodes"]))
    if s.get("beat_score_skipped"):
        print("  beats: not scored (%s)" % s["beat_score_skipped"])
    else:
        print("  beats: %d detected vs %d reference beats of MIT-BIH %s: Se %s, +P %s"
              % (s["beats_detected"], s["beats_reference"], s["record"], pct(s["se"]),
                 pct(s["ppv"])))
    print("  frames: %d sent, %d verified, %d stored at the gateway; %d dropped, %d still queued"
          " (%d of them awaiting the gateway's acknowledgement); %d sent again for want of an"
          " acknowledgement (duplicates removed: %d)"
          % (s["frames_sent"], s["frames_verified"], s["frames_stored"], s["frames_dropped"],
             s["frames_queued_at_end"], s["frames_in_flight_at_end"], s["frames_resent"],
             s["duplicates_removed"]))
    print("  alerts raised: %d (lost %d); samples lost: %d; crashes: %d"
          % (s["alerts"], s["alerts_lost"], s["samples_lost"], s["crashes"]))
    if s.get("vitals_latency_s_max") is not None:
        print("  measured -> stored at the gateway: alerts p95 %s ms, vitals at most %.1f s "
              "(to about 1 s: the gateway's clock follows the node's)"
              % (s["alert_latency_ms_p95"] if s.get("alert_latency_ms_p95") is not None else "-",
                 s["vitals_latency_s_max"]))
    if s.get("fifo_fill_max") is not None:
        print("  timing (%s): sampler timer latency max %.1f ms; FIFO fullest %d of 32"
              % (s["timing"], s["pump_latency_ms_max"] or 0, s["fifo_fill_max"]))
    if s["peak_heap_bytes"] is not None:
        print("  heap of the node: peak %d bytes in use, least free %d bytes (cap %s, %s)"
              % (s["peak_heap_bytes"], s["min_free_heap_bytes"], s["heap_cap"], s["vm"]))
    print("  FHIR bundle: %s (%d Observations); PNG: %s" % (s["fhir_bundle"], s["fhir_observations"],
                                                            s["png"]))
    if "outage_seconds" in s:
        print("  outage: broker unreachable %d s from t=%d s; %d frames dropped by the outbox's "
              "policy; alerts lost %d; queue drained %s s after the broker returned; longest "
              "gap in the stored vitals %s s"
              % (s["outage_seconds"], s["outage_at_s"], s["frames_dropped_by_policy"],
                 s["alerts_lost"], s["drain_seconds"], s["gateway_gap_s_max"]))
        for name, (ok, fig) in s["outage_targets"].items():
            print("  [%s] %s: %s" % ("met" if ok else "MISSED", name, fig))


if __name__ == "__main__":
    sys.exit(main())
