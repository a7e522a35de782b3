"""Benchmarks: `make bench` -> build/bench/results.json.

    .venv/bin/python -m tools.bench all          # everything below
    .venv/bin/python -m tools.bench sensor       # FIFO read cost on the VMs
    .venv/bin/python -m tools.bench qrs --db DIR --out OUT [--records 100,101] [--channel 0]
    .venv/bin/python -m tools.bench rhythm --db DIR --out OUT [--records 201,207] [--channel 0]
    .venv/bin/python -m tools.bench noise [--records 118,119] [--snr 6,0] [--write DIR]
    .venv/bin/python -m tools.bench ppg --db DIR --out OUT [--records bidmc_01]
    .venv/bin/python -m tools.bench detect       # pipeline cost + heap on the VMs
    .venv/bin/python -m tools.bench ota          # verify time, SHA-256, crash points, fuzz
    .venv/bin/python -m tools.bench power        # energy model: make sim with power saving
                                                 # on and off side by side, and FAULTS=all;
                                                 # the LED floor by perfusion

qrs/rhythm/ppg run the device detector modules on CPython over a database
(any WFDB records; BIDMC CSV(.gz)), write OUT/<record>.txt (qrs, ppg: one
detected sample index per line; rhythm: one episode per line,
`start_sample end_sample LABEL` with LABEL AFIB, VF or ASYS) and print
their scoring; without --db/--out they use the shared data and
build/bench/{qrs,rhythm,ppg}.

results.json holds one number per named metric (flat keys, other tools
read them) and, under "_about", each metric's unit, the command that
produced it and what exactly was measured. A run updates only the keys it
measured, so partial runs keep earlier figures.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from pathlib import Path

from tools.paths import BUILD, DATA_HELP, ROOT, STAGE0_FILES, data_dir
from tools.vm import launch

RESULTS = BUILD / "bench" / "results.json"


def run_vm(vm, script, heap="1M", data=None, timeout=600):
    """Run a MicroPython script on a VM; returns its BENCH {...} dict. The
    script starts with the builtin `time` (real clock), then the device
    tree and the shims on sys.path; DATA names the folder `data` (a host
    folder of prepared inputs: copied in as /data on wasm)."""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
    if vm == "wasm":
        tmp.write("DATA = '/data'\n" + open(script).read())
        tmp.close()
        cmd = ["node", str(ROOT / "tools/vm/run_script.mjs"), str(ROOT), tmp.name]
        env = dict(os.environ, NODE_PATH=str(ROOT / "tools" / "node_modules"))
        if data:
            env["VM_DATA"] = str(data)
    else:  # the 32-bit 1.27 unix build (tools/vm/launch.py): device tree and shims on its path
        # the builtin time (the real clock), not the frozen shim on the virtual one
        prelude = ("import sys\n_p = sys.path[:]\nsys.path.clear()\nimport time\n"
                   "sys.path.extend(_p)\nDATA = %r\n" % str(data or ""))
        tmp.write(prelude + open(script).read())
        tmp.close()
    try:
        if vm == "wasm":
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env,
                               timeout=timeout)
        else:
            with launch.Run("unix", heap=heap, tests=None) as run:
                r = run.call(tmp.name, timeout=timeout)
    finally:
        os.unlink(tmp.name)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise SystemExit("%s bench %s failed:\n%s%s" % (vm, script, r.stdout, r.stderr))


def bench_sensor():
    script = ROOT / "tools/bench/sensor_vm.py"
    cmd = ".venv/bin/python -m tools.bench sensor"
    what = ("MAX86150 driver read_fifo() of 32 samples x 3 channels (IR, red, ECG) with the FIFO "
            "full; I2C stand-in returns at once, so this is the driver's Python work; mean of 400 reads")
    out = {}
    w = run_vm("wasm", script)
    u = run_vm("unix", script)
    out["sensor.fifo_read_us_wasm"] = (round(w["fifo_read_us"], 1), "us", what + ", 32-bit wasm VM under Node")
    out["sensor.fifo_read_us_unix"] = (round(u["fifo_read_us"], 1), "us", what + ", unix port")
    heap = math.ceil(max(w["fifo_read_heap_bytes"], u["fifo_read_heap_bytes"]))
    out["sensor.fifo_read_heap_bytes"] = (heap, "bytes", "heap allocated per read_fifo(), "
                                          "gc.mem_alloc() delta over 100 reads, worst of both VMs")
    return {k: v + (cmd,) for k, v in out.items()}


def _db_out_names(a, db_name, what):
    """--db / --out / --records, defaulting to the shared data and build/bench/<what>."""
    return (a.db or data_dir() / db_name, a.out or BUILD / "bench" / what,
            a.records.split(",") if a.records else None)


def bench_qrs(a):
    from tools.bench import detectors
    db, out, names = _db_out_names(a, "mitdb", "qrs")
    res = detectors.run_qrs(db, out, names, a.channel, a.jobs)
    cmd = ".venv/bin/python -m tools.bench qrs --db %s --out %s" % (db, out)
    if names or a.channel or a.db:
        return {}  # a partial or foreign run: printed, not recorded
    what = ("MIT-BIH %s, channel 0, whole records, EC57 beat labels, +-150 ms one-to-one, gross; "
            "VF episodes excluded as EC57 does")
    out = {}
    for label, key in (("all", "mitdb"), ("ds1", "mitdb_ds1"), ("ds2", "mitdb_ds2")):
        r = res[label]
        sub = "all %d records" % r["records"] if label == "all" else label.upper()
        out["qrs.%s.se" % key] = (round(r["se"], 3), "%", "sensitivity, " + what % sub)
        out["qrs.%s.ppv" % key] = (round(r["ppv"], 3), "%", "positive predictivity, " + what % sub)
    r = res["all"]
    out["qrs.mitdb_strict.se"] = (round(r["se_strict"], 3), "%", "as qrs.mitdb.se with VF episodes scored")
    out["qrs.mitdb_strict.ppv"] = (round(r["ppv_strict"], 3), "%", "as qrs.mitdb.ppv with VF episodes "
                                   "scored (beats published on flutter waves count as false positives)")
    return {k: v + (cmd,) for k, v in out.items()}


def bench_rhythm(a):
    from tools.bench import detectors
    db, out, names = _db_out_names(a, "mitdb", "rhythm")
    res = detectors.run_rhythm(db, out, names, a.channel, a.jobs)
    if names or a.channel or a.db:
        return {}
    cmd = ".venv/bin/python -m tools.bench rhythm --db %s --out %s" % (db, out)
    af = "duration-weighted against the (AFIB rhythm annotations, MIT-BIH %s, channel 0"
    vf = res["vf"]
    out = {
        "rhythm.af.se": (round(res["all"]["af_se"], 2), "%", "AF sensitivity, " + af % "all 48 records"),
        "rhythm.af.sp": (round(res["all"]["af_sp"], 2), "%", "AF specificity, " + af % "all 48 records"),
        "rhythm.af_ds1.se": (round(res["ds1"]["af_se"], 2), "%", "AF sensitivity, " + af % "DS1 (tuning set)"),
        "rhythm.af_ds1.sp": (round(res["ds1"]["af_sp"], 2), "%", "AF specificity, " + af % "DS1 (tuning set)"),
        "rhythm.af_ds2.se": (round(res["ds2"]["af_se"], 2), "%", "AF sensitivity, " + af % "DS2"),
        "rhythm.af_ds2.sp": (round(res["ds2"]["af_sp"], 2), "%", "AF specificity, " + af % "DS2"),
        "rhythm.af_dash2009.se": (round(res["all"]["dash_se"], 2), "%", "for comparison: Dash et al. 2009 "
                                  "(RMSSD, Shannon entropy, turning points; published thresholds) on the node's "
                                  "beats, AF sensitivity, " + af % "all 48 records"),
        "rhythm.af_dash2009.sp": (round(res["all"]["dash_sp"], 2), "%", "as rhythm.af_dash2009.se: AF "
                                  "specificity"),
        "rhythm.vf.episodes": (vf["episodes"], "episodes", "(VFL / (VF rhythm episodes in MIT-BIH"),
        "rhythm.vf.episodes_detected": (vf["detected"], "episodes", "VF/VFL episodes whose VF alarm came "
                                        "within 10 s of the onset (of %d)" % vf["episodes"]),
        "rhythm.vf.max_alarm_delay_s": (round(vf["max_delay_s"], 1) if vf["max_delay_s"] is not None else None,
                                        "s", "longest onset-to-alarm time of the alarmed episodes"),
        "rhythm.vf.false_alarms_per_24h": (round(vf["false_per_24h"], 2), "per 24 h",
                                           "VF alarms raised outside every VF/VFL episode, over the %.1f h "
                                           "of MIT-BIH outside them (%d alarms)" % (vf["hours"],
                                                                                    vf["false_alarms"])),
    }
    return {k: v + (cmd,) for k, v in out.items()}


def bench_noise(a):
    from tools.bench import detectors
    db = a.db or data_dir() / "mitdb"
    names = a.records.split(",") if a.records else None
    snrs = [int(v) for v in a.snr.split(",")] if a.snr else None
    res = detectors.run_noise(db, names, snrs, a.jobs, a.write)
    if names or a.db or snrs:
        return {}
    cmd = ".venv/bin/python -m tools.bench noise"
    what = ("DER = (FN + FP) / reference beats in %%, per SNR (dB, NSTDB's definition), of the published beats "
            "on our noise stress set (tools/bench/noise.py: MIT-BIH %s with synthetic wander, muscle and "
            "electrode-motion noise; 5 min clean, then 2 min noisy / 2 min clean), scored from 5:00")
    out = {}
    for label, key, sub in (("all", "qrs.noise.der_by_snr", "DS1 + DS2, 44 records"),
                            ("ds1", "qrs.noise_ds1.der_by_snr", "DS1 (tuning set)"),
                            ("ds2", "qrs.noise_ds2.der_by_snr", "DS2")):
        r = res[label]
        out[key] = ({str(s): round(b["der"], 2) for s, b in r["by_snr"].items()}, "%", what % sub)
    r = res["all"]
    out["qrs.noise.fp_flagged_pct"] = (round(r["fp_flagged_pct"], 1), "%",
                                       "share of false detections at SNR <= 6 dB that the node flagged NOISY")
    out["qrs.noise.beats_flagged_pct"] = (round(r["beats_flagged_pct"], 1), "%",
                                          "share of all published beats at SNR <= 6 dB flagged NOISY (the "
                                          "flag's cost)")
    return {k: v + (cmd,) for k, v in out.items()}


def bench_ppg(a):
    from tools.bench import detectors
    db, out, names = _db_out_names(a, "bidmc", "ppg")
    res = detectors.run_ppg(db, out, names, a.jobs)
    if names or a.db:
        return {}
    cmd = ".venv/bin/python -m tools.bench ppg --db %s --out %s" % (db, out)
    return {"ppg.bidmc.beat_hr_mae_bpm": (round(res["beat_mae"], 3), "bpm",
                                          "BIDMC %d records, PLETH 125 Hz, from the beat lists OUT/<record>.txt: "
                                          "|60 / mean interval between the detected peaks in each 8 s window (step "
                                          "2 s) - mean of the monitor's HR numeric there|, %d windows"
                                          % (res["records"], res["windows"]), cmd),
            "ppg.bidmc.hr_mae_bpm": (round(res["mae"], 3), "bpm",
                                     "second figure: as beat_hr_mae_bpm with 60 / median interval (robust to a "
                                     "missed or extra pulse)", cmd),
            "ppg.bidmc.node_hr_mae_bpm": (round(res["node_mae"], 3), "bpm",
                                          "second figure: the node's own smoothed pulse rate (ppg.hr_x10, median of "
                                          "8 IBIs) at each window's end against the same reference, %d windows"
                                          % res["node_windows"], cmd)}


def detect_inputs():
    """300 s of MIT-BIH 100 (ECG, 360 sps) and BIDMC 01 PLETH at 100 sps made
    into IR / red photodiode counts (PI 2 %, R of SpO2 97 %) -> build/bench/vmdata."""
    from array import array
    from tools.bench import records
    out = BUILD / "bench" / "vmdata"
    out.mkdir(parents=True, exist_ok=True)
    ecg, _ = records.wfdb_signal(data_dir() / "mitdb", "100", 0)
    pleth, _ = records.bidmc_pleth(data_dir() / "bidmc", "bidmc_01")
    n = 30000  # 300 s at 100 sps, from 125 sps by integer linear interpolation
    p100 = array("i", (pleth[(i * 5) // 4] + ((pleth[(i * 5) // 4 + 1] - pleth[(i * 5) // 4]) * ((i * 5) % 4)) // 4
                       for i in range(n)))
    ir = array("i", (90000 - (v * 1800) // 32768 for v in p100))
    red = array("i", (60000 - (v * 624) // 32768 for v in p100))
    for name, arr in (("ecg360.bin", ecg[:360 * 300]), ("ir100.bin", ir), ("red100.bin", red)):
        (out / name).write_bytes(arr.tobytes())
    return out


def bench_detect(a):
    script = ROOT / "tools/bench/detect_vm.py"
    data = detect_inputs()
    cmd = ".venv/bin/python -m tools.bench detect"
    w = run_vm("wasm", script, data=data)
    u = run_vm("unix", script, data=data)
    nw = run_vm("wasm", ROOT / "tools/bench/node_vm.py")
    nu = run_vm("unix", ROOT / "tools/bench/node_vm.py")
    what_node = ("the node's own work per FIFO sample (ECG + IR + red at 200 sps): firmware.sampler "
                 "service() + firmware.detect service(), drained every 85 ms from the simulated "
                 "MAX86150 (synthetic 72/min), the chip simulation's own time subtracted, %d samples "
                 "(tools/bench/node_vm.py); tools/power/table.py prices the CPU's work with it")
    what = ("whole detection pipeline: QRS and rhythm analysis (lib/rhythm: published beats, monitor "
            "rate, VF, AF) on ECG at 360 sps + pulse and SpO2 on IR/red at 100 sps + alerts, per second "
            "of signal (MIT-BIH 100 + BIDMC 01), warmed up, %d s timed")
    out = {
        "detect.wasm_ms_per_signal_second": (round(w["ms_per_signal_second"], 3), "ms",
                                             what % w["seconds"] + ", 32-bit wasm VM under Node"),
        "detect.unix_ms_per_signal_second": (round(u["ms_per_signal_second"], 3), "ms",
                                             what % u["seconds"] + ", unix port (x86-64)"),
        "detect.esp32_cpu_pct_low": (round(w["ms_per_signal_second"] * 30 / 10, 1), "%",
                                     "ESP32 CPU share estimate: wasm time x 30 (notes: ESP32 = wasm x 30-60)"),
        "detect.esp32_cpu_pct_high": (round(w["ms_per_signal_second"] * 60 / 10, 1), "%",
                                      "ESP32 CPU share estimate: wasm time x 60"),
        "detect.node_us_per_fifo_sample_wasm": (round(nw["us_per_sample"], 1), "us",
                                                what_node % nw["samples"] + ", 32-bit wasm VM under Node"),
        "detect.node_us_per_fifo_sample_unix": (round(nu["us_per_sample"], 1), "us",
                                                what_node % nu["samples"] + ", unix port"),
        "detect.heap_bytes_per_sample": (math.ceil(max(w["heap_bytes_per_sample"], u["heap_bytes_per_sample"])),
                                         "bytes", "gc.mem_alloc() delta over 90 s of the pipeline (50400 "
                                         "samples) after warm-up, per sample, worst of both VMs"),
    }
    return {k: v + (cmd,) for k, v in out.items()}


def bench_ota(a):
    """OTA: verify time and SHA-256 throughput on both VMs, ESP32 estimate,
    the power-loss crash points and the fuzz cases of the OTA tests."""
    import shutil
    from tools.ota import fuzz
    data = BUILD / "bench" / "ota-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    for f in STAGE0_FILES:  # stage0.py imports nvsrec
        shutil.copy(ROOT / f, data)
    for f in ("otafixture.py", "test_ota_powerloss.py", "devtest.py"):
        shutil.copy(ROOT / "host_tests" / "device" / f, data)
    script = ROOT / "tools/bench/ota_vm.py"
    cmd = ".venv/bin/python -m tools.bench ota"
    w = run_vm("wasm", script, data=data)
    u = run_vm("unix", script, data=data)
    t0 = time.time()
    cases = fuzz.run()
    what = "RSA-3072-PSS verify of a manifest signature (pow(s, 65537, n), MGF1, SHA-256), mean of 60 after warm-up"
    out = {
        "ota.rsa3072_pss_verify_ms_wasm": (round(w["verify_ms"], 2), "ms", what + ", 32-bit wasm VM under Node"),
        "ota.rsa3072_pss_verify_ms_unix": (round(u["verify_ms"], 2), "ms", what + ", unix port (x86-64)"),
        "ota.rsa3072_pss_verify_ms_esp32_low": (round(w["verify_ms"] * 30), "ms",
                                                "ESP32 estimate: wasm time x 30 (notes: ESP32 = wasm x 30-60)"),
        "ota.rsa3072_pss_verify_ms_esp32_high": (round(w["verify_ms"] * 60), "ms", "ESP32 estimate: wasm time x 60"),
        "ota.sha256_kib_per_s_wasm": (round(w["sha_kib_s"]), "KiB/s",
                                      "hashlib.sha256 over 2 MiB in 4 KiB blocks, wasm VM (ESP32: / 30-60 "
                                      "for software; the ESP32 port hashes in hardware)"),
        "ota.powerloss_crash_points": (u["crash_points"], "points",
                                       "flash operations (every sector erase and page program of LittleFS and "
                                       "the app partition, every NVS and otadata commit) of one update - stage, "
                                       "trial boot, confirm - with power cut at each, a torn write, then reboot "
                                       "and check: host_tests/device/test_ota_powerloss.py on MicroPython 1.27 "
                                       "32-bit (real LittleFS)"),
        "ota.fuzz_cases": (cases, "cases", "mutated + hostile signed manifests through the device code, none "
                           "accepted wrongly (tools/ota/fuzz.py, test_ota_fuzz.py), %.0f s" % (time.time() - t0)),
    }
    return {k: v + (cmd,) for k, v in out.items()}


POWER_SECONDS = 600  # each power run: simulated seconds
# the runs of `bench power`: the same duration, records and fault plan apart
# from what each one is for (the simulator has no random seed: a run is
# deterministic but for the real broker's timing)
POWER_RUNS = {"save_on": ["--power-save", "on"], "save_off": ["--power-save", "off"],
              "faults_all": ["--power-save", "on", "--faults", "all"],
              "outage": ["--power-save", "on", "--outage", "1200"]}
OUTAGE_RUN_SECONDS = 2400  # the outage run: the broker a black hole from minute 10 for 20 min


def power_commands(seconds=POWER_SECONDS):
    """{run: argv of python -m tools.sim} for each of POWER_RUNS, each in a
    folder of its own under build/bench (its broker on a free port)."""
    out = {}
    for name, extra in POWER_RUNS.items():
        d = BUILD / "bench" / ("power-" + name)
        dur = OUTAGE_RUN_SECONDS if name == "outage" else seconds
        out[name] = ["-m", "tools.sim", "--duration", str(dur), "--record", "100",
                     "--ppg", "01", *extra, "--workdir", str(d), "--out", str(d / "summary.json")]
    return out


def run_sims(commands, jobs=2):
    """Run the sims of `commands` ({name: argv}), at most `jobs` at once
    (save_on and save_off start together: side by side, under the same
    load); {name: summary}. SystemExit naming the run if one fails."""
    from tools.provision.site import dev_site
    dev_site(BUILD / "dev-site")  # made once, before runs that share it start
    names = list(commands)
    done = {}
    failed = []
    for i in range(0, len(names), jobs):
        batch = names[i:i + jobs]
        procs = {}
        for n in batch:
            out = Path(commands[n][commands[n].index("--out") + 1])
            out.unlink(missing_ok=True)
            procs[n] = (out, subprocess.Popen([sys.executable, *commands[n]], cwd=ROOT, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for n, (out, p) in procs.items():
            try:
                log, _ = p.communicate(timeout=3600)
            except BaseException:  # Ctrl-C or a run past an hour: none is left running
                for _, q in procs.values():
                    q.kill()
                raise
            if p.returncode != 0 or not out.exists():
                failed.append("power bench: the %s run (python %s) failed (exit %s):\n%s"
                              % (n, " ".join(commands[n]), p.returncode, log[-4000:]))
            else:
                done[n] = json.loads(out.read_text())
        if failed:
            raise SystemExit("\n".join(failed))
    return done


def window_ma(summary, a_s, b_s):
    """The time-weighted mean supply current (mA) of the first node from
    a_s to b_s simulated seconds (tools.power.model.mean_ma), from its
    current timeline: the CSV `make sim` writes (start_s, length_s,
    supply_ma; the summary names it relative to the checkout)."""
    import csv

    from tools.power import model
    points = []
    with open(ROOT / summary["per_node"][0]["current_timeline"]["csv"]) as f:
        for row in csv.DictReader(f):
            t0 = max(float(row["start_s"]), a_s)
            dt = min(float(row["start_s"]) + float(row["length_s"]), b_s) - t0
            if dt > 0:
                points.append((t0, dt, float(row["supply_ma"])))
    ma = model.mean_ma(points)
    return round(ma, 2) if ma is not None else None


def _pi_key(pi):
    return "power.leds_ma_floor_pi" + ("%g" % pi).replace(".", "p")


def bench_power(a, run=run_sims, leds=None):
    """The energy model (tools/power) over `make sim` runs of the node:
    600 simulated s each, MIT-BIH 100 + BIDMC 01 - with power saving on
    (config power.save true, the default) and off (false), run side by
    side, and with power saving on under FAULTS=all. run: {name: argv} ->
    {name: summary} (a test gives its own). Then the LED floor by
    perfusion (tools/bench/ledfloor.py; leds: its run(), or a test's)."""
    from tools.bench import ledfloor
    fl = (leds or ledfloor.run)()
    cmds = power_commands()
    s = run(cmds)
    on, off, faults, outage = s["save_on"], s["save_off"], s["faults_all"], s["outage"]
    shown = {n: ".venv/bin/python " + " ".join(c[:c.index("--workdir")]) + " (via tools.bench power)"
             for n, c in cmds.items()}
    what = ("Energy = sum of current x time over the node's simulated state times (docs/power.md), "
            "%d simulated s of `make sim`, MIT-BIH 100 + BIDMC 01, %s, capacity 500 mAh, no derating"
            % (POWER_SECONDS, on["vm"]))
    same = abs(on["avg_current_ma"] - off["avg_current_ma"]) < 0.01
    out = {
        "power.avg_current_ma": (on["avg_current_ma"], "mA", "average supply current with power "
                                 "saving on (config power.save true, the default), no faults; "
                                 + what, shown["save_on"]),
        "power.battery_hours_500mah": (on["battery_hours"], "h", "500 mAh / average current, power "
                                       "saving on, no faults; " + what, shown["save_on"]),
        "power.battery_hours_500mah_always_on": (
            off["battery_hours"], "h",
            "500 mAh / average current of a second run side by side with the first, with power "
            "saving off (config power.save false; %.2f mA): the same duration and recordings, "
            "no faults; beats detected %s with saving on, %s off; samples lost %d on, %d off%s; "
            % (off["avg_current_ma"], on.get("beats_detected"), off.get("beats_detected"),
               on.get("samples_lost", 0), off.get("samples_lost", 0),
               "; the two runs draw the same current: the firmware measured does not act on "
               "power.save" if same else "") + what, shown["save_off"]),
        "power.battery_hours_500mah_faults_all": (
            faults["battery_hours"], "h",
            "500 mAh / average current (%.2f mA), power saving on, FAULTS=all (%s); " % (
                faults["avg_current_ma"], ", ".join("%s %d-%d s" % (f["kind"], f["at"], f["until"])
                                                    for f in faults.get("faults", [])))
            + what, shown["faults_all"]),
    }
    a = outage["outage_at_s"]
    b = a + outage["outage_seconds"]
    out["power.outage_current_ma"] = (
        window_ma(outage, a, b), "mA",
        "average supply current while the broker is a black hole (connects and reads hang until "
        "they time out) for %d s from t=%d s, power saving on (batches that cannot connect space "
        "out to power.retry_max_s, default 180 s); %.2f mA from t=60 s until it began; the "
        "queue drained %s s after the broker returned, %d vitals frames dropped by the outbox's "
        "policy (it holds ~20 min), longest gap in the stored vitals %s s; %d simulated s, "
        "MIT-BIH 100 + BIDMC 01, %s"
        % (b - a, a, window_ma(outage, 60, a), outage.get("drain_seconds"),
           outage.get("frames_dropped_by_policy", 0), outage.get("gateway_gap_s_max"), OUTAGE_RUN_SECONDS,
           outage["vm"]), shown["outage"])
    for pi, r in fl.items():
        on, off = r["on"], r["off"]
        out[_pi_key(pi)] = (
            on["led_ma"], "mA",
            "the LEDs' average current with the LED floor on (config power.led_floor true, the "
            "default) on a finger of perfusion index %g %% (IR AC/DC), %.3f mA with it off; SpO2 "
            "%s on, %s off (truth 97.0 %%), valid %d %% of the time on, %d %% off; the node's "
            "sampler and detector on the simulated MAX86150, synthetic 75/min pulse, the mean over "
            "%d s after %d s to settle (tools/bench/ledfloor.py, CPython)"
            % (pi, off["led_ma"], _x10(on["spo2_x10"]), _x10(off["spo2_x10"]),
               100 * on["spo2_valid_share"], 100 * off["spo2_valid_share"], ledfloor.AVG_S,
               ledfloor.SETTLE_S),
            ".venv/bin/python -m tools.bench power")
    return out


def _x10(v):
    return "%.1f %%" % (v / 10) if v > 0 else "no reading"


# the benches that replay ../shared/data (the others make their own inputs)
_NEEDS_DATA = {"qrs", "rhythm", "noise", "ppg", "detect"}
BENCHES = {"sensor": lambda a: bench_sensor(), "qrs": bench_qrs, "rhythm": bench_rhythm, "noise": bench_noise,
           "ppg": bench_ppg, "detect": bench_detect, "ota": bench_ota, "power": bench_power}


def write(results):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    about = data.setdefault("_about", {})
    for key, (value, unit, what, cmd) in results.items():
        data[key] = value
        about[key] = {"unit": unit, "what": what, "command": cmd,
                      "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=sorted(BENCHES) + ["all"])
    ap.add_argument("--db", type=Path, help="qrs/rhythm: WFDB folder; ppg: BIDMC CSV folder")
    ap.add_argument("--out", type=Path, help="qrs/rhythm/ppg: folder for <record>.txt")
    ap.add_argument("--records", help="qrs/rhythm/ppg: comma-separated record names (default: all)")
    ap.add_argument("--channel", type=int, default=0, help="qrs/rhythm: signal number (default 0)")
    ap.add_argument("--jobs", type=int, default=2, help="qrs/rhythm/noise/ppg: processes")
    ap.add_argument("--snr", help="noise: comma-separated SNRs in dB (default 24,18,12,6,0,-6)")
    ap.add_argument("--write", type=Path, help="noise: also write the noisy records as WFDB into this folder")
    a = ap.parse_args(argv)
    names = sorted(BENCHES) if a.what == "all" else [a.what]
    if a.db is None and not data_dir().is_dir() and set(names) & _NEEDS_DATA:
        print("bench: no recordings folder %s: %s" % (data_dir(), DATA_HELP), file=sys.stderr)
        return 2
    wrote = False
    for name in names:
        res = BENCHES[name](a)
        if res:
            write(res)
            wrote = True
        for k, (v, unit, _, _) in sorted(res.items()):
            print("%-40s %10s %s" % (k, v, unit))
    if wrote:
        print("wrote", RESULTS.relative_to(ROOT))
    else:
        print("(partial run: %s not updated)" % RESULTS.relative_to(ROOT))


if __name__ == "__main__":
    sys.exit(main())
