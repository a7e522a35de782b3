"""Boot a simulated node: boot.py then main.py on whatever runtime runs this
(the MicroPython unix port, or CPython with shims), on the virtual clock,
through resets, until `duration_s` of simulated time has passed.

MicroPython-compatible on purpose: tools/sim/runner.py starts it with
`micropython runner/node.py DURATION SPEC_FILE` in a private working
folder (tools/vm/launch.py); under CPython tools.sim imports it.

On MicroPython the node is the chip's own layout: the harness (the shims,
the simulated sensor, the fault schedule) is set up first and its heap is
measured; then, as the ESP32's _boot.py does, the flash's filesystem -
real LittleFS 2 (VfsLfs2) on the `vfs` partition of the flash image the
host built (simlfs.build_image: what `make deploy` and provisioning leave)
- is mounted at "/", sys.path is the chip's ['', '.frozen', '/lib'], and
/boot.py and /main.py run from it. No host path reaches the node: its heap
figures do not depend on where the checkout lies. Every figure reported is
the node's: the harness's footprint, measured before the boot, is taken off.
Under CPython the firmware runs from the checkout's sources (ROOT) with
its files on the same kind of flash image (littlefs-python).

SPEC_FILE (JSON, owner-only: it holds the node's key):
  flash     the flash image (a path relative to the working folder)
  nvs       what provisioning and deploy put in NVS {namespace: {key:
            ["blob", hex] | ["i32", n]}}
  sensor    simmax.attach_spec's spec, or absent for no sensor
  uid       the board's unique id (hex), default simboard's
  wifi      [[ssid, password, rssi], ...] access points in range
  faults    [{"kind": k, "at": s, "until": s[, "cont": true]}, ...] with k
            one of wifi (no AP), broker (the host stops the broker: the node
            prints SIM-FAULT and waits for a line on stdin), blackhole (the
            broker unreachable: connects and reads hang to their timeout),
            finger (finger off the sensor), leadoff (ECG leads off), motion
            (motion artefact on PPG and ECG), i2c (SDA held low at `at`),
            brownout (the sensor's registers back at reset values at `at`),
            power (power cut at `at`, wherever the node is). cont: the
            fault began before this run (a reset ended the last one): its
            state is restored, the host is not asked again
  progress_s  print SIM-PROGRESS <json> (the running app at a glance) this often
  clock_s   print SIM-CLOCK <virtual ms> this often (the host's gateway
            clock follows it: its acks set the node's RTC)
  heap_every_s  collect and sample the heap this often (default 1)
  pace      1.0: sleeps take real time too (a real-time run)
  power_timeline  [bins, bin s]: the power meter keeps a bin of state times
            per bin s (powerstate.Meter.timeline; summary power.timeline)
  timing    "typical" (default) or "worst": how long the chip's blocking
            calls take (tools/shims/timing.py)
  tls_keys  {"ca": "rsa3072", "server": "rsa2048"}: the site's key types,
            for the handshake's computing time (tools/shims/simnet.py)
  battery   {"pct": start %, "capacity_mah", "adc_pin", "divider",
            "price": tools/power/model.prices()}: the board's LiPo cell
            (tools/shims/simbattery.py), absent: none
  segment   true: one boot per run - a reset or power cut ends it (SIM-RESET),
            and the host starts the next run from its flash and snapshot, as
            the chip's reset wipes RAM (tools/soak.py)
  start_ms  the virtual clock's start (a run that goes on from another)
  snapshot  SIM-SNAPSHOT of the run before (NVS, otadata, RTC memory)
  boot_cause  the reset this run boots from (machine.*_RESET)
  push      an update server URL: the run starts as tools/ota/push.py does
            (soft reset, boot.py only, ota.update(url), machine.reset())
On MicroPython the node's `socket` and `tls` are simnet's: real sockets to
the real broker, with the chip's DNS, round-trip and handshake times and
its rules for when scheduled callbacks run meanwhile. (Under CPython the
network costs no virtual time: the host's own threads share `socket`.)
Lines for the host: SIM-RECSTART <ms> when the sensor starts streaming
its recording from the top (every configuration), SIM-PROGRESS, SIM-EVENT,
SIM-FAULT, SIM-RECOVER <kind> <end ms> <ms> (the node recovered from a
fault: connected again, or the spoiled value valid again), SIM-DRAINED
<kind> <end ms> <ms> (every frame queued when a network fault ended was
delivered), SIM-BOOTSTAT <json> (what a boot did, as it ends), SIM-POWER,
SIM-OTA, SIM-RESET <cause> <ms>, SIM-SNAPSHOT <json>, SIM-FOOTPRINT
(DURATION 0: a probe of the harness alone), SIM-POWERBINS <column> <values>
(power_timeline: power_bins()), and last SIM-SUMMARY <json>.
"""
import gc
import json
import sys

# the chip's built-in modules, shimmed here: imported by the harness so
# their heap counts as harness, not as the node's (on the ESP32 they are in
# ROM and cost the node no heap)
import binascii  # noqa: F401
import esp32  # noqa: F401
import machine  # noqa: F401
import network  # noqa: F401
import simboard
import simflash  # noqa: F401
import simmax  # noqa: F401
import simnet
import time  # noqa: F401 (the shim, before the node's first import of it)
import timing
import vclock
import waveforms  # noqa: F401
from simflash import PowerLoss

_MP = sys.implementation.name == "micropython"
CHIP_PATH = ["", ".frozen", "/lib"]  # sys.path at power-on (ports/esp32/main.c)


class SimEnd(BaseException):
    pass


def _end():
    raise SimEnd()


def _exec_file(path, g):
    with open(path) as f:
        src = f.read()
    exec(compile(src, path, "exec"), g)


def _purge(baseline):
    """Forget modules the firmware imported, as a reset clears RAM."""
    for name in list(sys.modules):
        if name not in baseline:
            del sys.modules[name]


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback
        traceback.print_exception(e)


def provision_nvs(b, nvs):
    """What provisioning and deploy write into NVS: {namespace: {key:
    ["blob", hex] | ["i32", n]}} (tools/provision/image.py builds it)."""
    for ns, keys in nvs.items():
        d = b.nvs.setdefault(ns, {})
        for k, (kind, v) in keys.items():
            d[k] = (kind, v if kind == "i32" else binascii.unhexlify(v))


def _app_status():
    """The running node at a glance, read off firmware.app._running (here,
    not in the firmware: this code is frozen into the harness's binary, so
    reading it costs the node's heap nothing); {} before the monitor loop."""
    running = _running()
    if not running:
        return {}
    link, pump = running
    smp, det = pump.smp, pump.det
    st = {"samples": smp.times.head if smp else 0,
          "lost": smp.lost + smp.lost_estimated if smp else 0}
    if det is not None:
        st.update(hr_x10=det.hr_x10, spo2_x10=det.spo2_x10, hr_valid=det.hr_valid,
                  spo2_valid=det.spo2_valid, alerts=det.alerts.active,
                  alert_events=det.alerts.count, beats=det.seen_qrs + det.seen_pulse)
    if link is not None:
        st.update(sent=link.up.published - link.up.resent, acked=link.up.acked,
                  resent=link.up.resent, queued=link.box.depth, in_flight=link.box.in_flight,
                  dropped=link.box.dropped_total(), broker_up=link.up.up,
                  connects=link.up.connects, alerts_lost=link.tm.alerts_lost)
    return st


def _app_peaks():
    """The newest QRS and pulse peaks (ms since the detector's first
    sample) of the running node, for the simulator's waveform plot."""
    app = sys.modules.get("firmware.app")
    running = getattr(app, "_running", None) if app is not None else None
    if not running or running[1].det is None:
        return {}
    det = running[1].det
    out = {}
    q = det.qrs
    if q is not None:
        out["qrs_ms"] = [q.beat(i) * 1000 // det.rate for i in range(max(0, q.count - 30), q.count)]
    p = det.pulse
    if p is not None:
        r = det.rate // det.dec
        out["ppg_ms"] = [p.peak(i) * 1000 // r for i in range(max(0, p.count - 30), p.count)]
    return out


def _ask_host(what):
    """A fault the host makes (the broker is a host process): say so and
    wait until it is done, so the fault starts at this simulated instant."""
    print("SIM-FAULT " + what)
    sys.stdin.readline()


def _running():
    app = sys.modules.get("firmware.app")
    return getattr(app, "_running", None) if app is not None else None


def _link_up():
    r = _running()
    return bool(r and r[0] is not None and r[0].up.up)


def _det():
    r = _running()
    return r[1].det if r else None


def _smp():
    r = _running()
    return r[1].smp if r else None


def _recovered(kind, since):
    """Has the node recovered from fault `kind` (ended at `since` samples)?
    Network faults: the uplink is connected again. Sensor faults: the value
    the fault spoiled is valid again, or samples flow again."""
    if kind in ("broker", "wifi", "blackhole", "power", "ota", "reset"):
        return _link_up()
    if kind in ("i2c", "brownout"):
        smp = _smp()
        return smp is not None and smp.fault is None and smp.times.head > since + 100
    det = _det()
    if det is None:
        return False
    return det.spo2_valid if kind == "finger" else det.hr_valid


def _watch(clk, kind):
    """After fault `kind` ends: SIM-RECOVER <kind> <end ms> <recovered ms>
    (-1: not within 15 min), and after a network fault SIM-DRAINED <kind>
    <end ms> <ms> once every frame queued at its end was delivered."""
    end = clk.now_us // 1000
    smp = _smp()
    since = smp.times.head if smp is not None else 0
    net = kind in ("broker", "wifi", "blackhole")
    r = _running()
    top = r[0].box._top if (net and r and r[0] is not None) else -1
    state = [False, not net]  # recovered, drained

    def poll():
        now = clk.now_us // 1000
        if not state[0] and (_recovered(kind, since) or now - end > 900000):
            state[0] = True
            print("SIM-RECOVER %s %d %d" % (kind, end, now if now - end <= 900000 else -1))
        if not state[1]:
            r = _running()
            box = r[0].box if (r and r[0] is not None) else None
            if box is not None and (box.depth == 0 or (box._wn and box._wseq[0] > top)):
                state[1] = True
                print("SIM-DRAINED %s %d %d" % (kind, end, now))
            elif now - end > 14400000:
                state[1] = True
                print("SIM-DRAINED %s %d -1" % (kind, end))
        if state[0] and state[1]:
            clk.cancel(h[0])
    h = [clk.call_at(clk.now_us + 100000, poll, 100000)]


def _faults(b, chip, clk, faults, on_fault, net=None):
    """Schedule the world's faults on the virtual clock."""
    import simmax

    def edge(kind, on, cont=False):
        print("SIM-EVENT %d %s %s" % (clk.now_us // 1000, kind,
                                      "end" if not on else "goes on" if cont else "start"))
        if kind == "wifi":
            b.wifi.down = on
            if on:
                b.wifi.drop()
        elif kind == "broker":
            if not cont:  # a fault that began before this run: the host made it already
                on_fault("broker " + ("down" if on else "up"))
        elif kind == "blackhole" and net is not None:
            net.blackhole = on
        elif kind == "finger" and chip is not None:
            chip.knobs.finger_off = on
        elif kind == "leadoff" and chip is not None:
            chip.knobs.lead_off = on
        elif kind == "motion" and chip is not None:
            chip.knobs.motion = (clk.now_us, clk.now_us + 3600000000, 40000) if on else None
        elif kind == "i2c" and on:
            b.i2c_buses[simmax.BUS].stick()  # SDA held low until 9 SCL pulses
        elif kind == "brownout" and on and chip is not None:
            chip._power_on_reset()  # the sensor's supply dipped: registers at reset values
        elif kind == "power" and on:
            print("SIM-POWER %d %d" % (clk.now_us // 1000, chip.dropped if chip else 0))
            raise PowerLoss("power lost at a random instant")
        if not on and kind != "power":
            _watch(clk, kind)
    for f in faults:
        clk.call_at(clk.now_us + int(f["at"] * 1000000),
                    lambda k=f["kind"], c=f.get("cont", False): edge(k, True, c))  # noqa: B008 - binds this fault's values
        if f["kind"] != "power":
            clk.call_at(clk.now_us + int(f["until"] * 1000000), lambda k=f["kind"]: edge(k, False))


class _Heap:
    """The node's heap, sampled after a collection: peak in use, least
    free, and the same per simulated hour (long runs)."""

    def __init__(self, clk, harness):
        self.clk = clk
        self.harness = harness
        self.peak = 0
        self.peak_at_s = 0
        self.min_free = None
        self.hour_peak = []
        self.hour_min_free = []

    def sample(self):
        gc.collect()
        used = gc.mem_alloc() - self.harness
        free = gc.mem_free()
        if used > self.peak:
            self.peak = used
            self.peak_at_s = self.clk.now_us // 1000000
        if self.min_free is None or free < self.min_free:
            self.min_free = free
        h = self.clk.now_us // 3600000000
        while len(self.hour_peak) <= h:
            self.hour_peak.append(0)
            self.hour_min_free.append(free)
        if used > self.hour_peak[h]:
            self.hour_peak[h] = used
        if free < self.hour_min_free[h]:
            self.hour_min_free[h] = free


def _chip_filesystem(b):
    """Power-on on the chip (_boot.py): the flash's LittleFS mounted at "/"
    and the port's sys.path. The unix port's host filesystem goes away:
    the node sees only its flash."""
    import os
    import vfs
    if b.fs is None:
        for _, mp in vfs.mount():
            if mp == "/":
                vfs.umount("/")  # the unix port's VfsPosix: the host's files
        b.mount_fs("/")
    os.chdir("/")
    sys.path[:] = CHIP_PATH


def _nvs_i32(b, ns, key):
    v = b.nvs.get(ns, {}).get(key)
    return v[1] if v else 0


def _boot_stat(clk, hw0, how):
    """SIM-BOOTSTAT <json>: what this boot did, read off the node as it
    ends (RAM is about to go): the sequence numbers it took [seq0, seq1),
    the outbox's drops and queue by kind, alerts lost."""
    r = _running()
    st = {"t": clk.now_us // 1000, "how": how, "seq0": hw0}
    if r and r[0] is not None:
        link = r[0]
        box = link.box
        c = box._counts  # by outbox.KIND_CHARS "?vase"
        st.update(seq1=link.tm.seq.next, dropped=box.dropped,
                  queued={"v": c[1], "a": c[2], "s": c[3], "e": c[4]},
                  alerts_lost=link.tm.alerts_lost, max_depth=box.max_depth,
                  sent=link.up.published - link.up.resent, connects=link.up.connects)
    print("SIM-BOOTSTAT " + json.dumps(st))


def _push_boot(b, root, url, log):
    """`make ota-push` on a running node (tools/ota/push.py): Ctrl-C, a soft
    reset into the raw REPL - RAM is wiped, boot.py runs and main.py does
    not, and the watchdog the app armed keeps running - then
    otapush.run(url). Returns the reset that follows: machine.reset()'s, a
    watchdog's if the push outlived it, or None if the push crashed."""
    b.reset(simboard.SOFT_RESET)
    machine.WDT(timeout=10000)  # the app's (firmware/app.py WDT_TIMEOUT_MS), still running
    try:
        if _MP:
            _chip_filesystem(b)
        _exec_file(root.rstrip("/") + "/boot.py", {"__name__": "__main__"})
        if _ota_push(url, log) is None:
            return None
    except simboard.NodeReset as r:
        log("[sim] t=%.1f s reset during the OTA push (cause %d: %s)"
            % (vclock.clock.now_us / 1e6, r.cause, r.why))
        return r.cause
    return simboard.HARD_RESET


def _ota_push(url, log):
    """What tools/ota/push.py runs on the node: otapush.run(url) (ota.update
    on a firmware from before it). Returns the version installed, "" if the
    node refused it, None if it raised something else (a crash)."""
    try:
        try:
            from firmware.otapush import run
        except ImportError:
            from firmware.ota import update as run
        from firmware.otamanifest import OtaError
        try:
            m = run(url)
            print("SIM-OTA %d installed %s" % (vclock.clock.now_us // 1000, m.version))
            return m.version
        except OtaError as e:
            print("SIM-OTA %d refused %s %s" % (vclock.clock.now_us // 1000, e.reason, e.detail))
            return ""
    except Exception as e:  # noqa: BLE001 - a crash of the push is counted, not raised
        log("[sim] OTA push raised:")
        _print_exc(e)
        if isinstance(e, MemoryError) and hasattr(gc, "mem_free"):
            import micropython
            micropython.mem_info()  # how much and how fragmented
        return None


def run(root, duration_s, board=None, log=print, sensor=None, image=None, world=None,
        probe=False):
    """root: where boot.py and main.py are ("/" on MicroPython: the node's
    flash; the checkout under CPython). probe: set the harness up exactly
    as for the run, then return its heap (SIM-FOOTPRINT) without booting."""
    world = world or {}
    timing.use(world.get("timing", "typical"))
    b = board or simboard.new_board()
    net = None
    if _MP:  # the node's network modules (see the module's docstring)
        net = simnet.SimNet(world.get("tls_keys"))
        sys.modules["socket"] = net
        sys.modules["tls"] = net.tls
    for ssid, key, rssi in world.get("wifi", ()):
        b.wifi.add_ap(ssid, key, rssi)
    cell = world.get("battery")
    if cell:  # the LiPo behind the node's ADC pin, draining by the energy model
        import simbattery
        b.battery = simbattery.Battery(b.power, cell["capacity_mah"], cell["pct"], cell["price"],
                                       cell["adc_pin"], cell["divider"], net)
        machine.ADC(cell["adc_pin"])  # its ADC object: static on the chip, the harness's here
    if image:
        provision_nvs(b, image.get("nvs", {}))
        if image.get("files") and b.fs is not None:  # CPython; a VM's image holds them
            for path, text in image["files"].items():
                with b.fs.open(path, "w") as f:
                    f.write(text)
    chip = simmax.attach_spec(sensor) if sensor else None
    clk = vclock.clock
    if chip is not None:
        chip.on_stream = lambda: print("SIM-RECSTART %d" % (clk.now_us // 1000))
    _faults(b, chip, clk, world.get("faults", ()), world.get("on_fault", _ask_host), net)
    clk.pace = world.get("pace", 0)
    tl = world.get("power_timeline")  # [bins, bin s]: supply current over time (powerstate)
    if tl:
        bin_us = int(tl[1] * 1000000)
        b.power.timeline(int(tl[0]), bin_us, net)
        clk.call_at(clk.now_us + bin_us, b.power.tick, bin_us)
    end_us = clk.now_us + int(duration_s * 1000000)
    clk.call_at(end_us, _end)
    every = world.get("progress_s", 0)
    if every:
        def progress():
            st = _app_status()
            st["t"] = clk.now_us // 1000000
            print("SIM-PROGRESS " + json.dumps(st))
        clk.call_at(clk.now_us + every * 1000000, progress, every * 1000000)
    every = world.get("clock_s", 0)
    if every:  # the host's gateway clock follows ours (tools/sim/world.py)
        clk.call_at(clk.now_us, lambda: print("SIM-CLOCK %d" % (clk.now_us // 1000)),
                    every * 1000000)
    heap = None
    if _MP:
        heap = _Heap(clk, 0)
        step = world.get("heap_every_s", 1) * 1000000
        clk.call_at(clk.now_us + step, heap.sample, step)
        if world_region[0] is not None:
            _ballast[0] = _carve(world_region[0])
            world_region[0] = None
        gc.collect()
        heap.harness = gc.mem_alloc()  # the harness's share, taken off every figure
        if probe:
            return heap.harness
    elif b.fs is not None:
        from firmware import storage
        storage.use(b.fs)  # CPython: the firmware's files on the flash image
    final = {}
    resets = []
    crashes = 0
    baseline = set(sys.modules)
    push = world.get("push")
    segment = world.get("segment", False)  # one boot per run: a reset ends it
    ended = 0
    cause = world.get("boot_cause")
    if cause == simboard.PWRON_RESET:
        b.power_cycle()
    elif cause:
        b.reset(cause)
    if cause:
        _watch(clk, "power" if cause == simboard.PWRON_RESET else "reset")
    while True:
        hw0 = _nvs_i32(b, "vn_tel", "hw")  # the first sequence number this boot may take
        if push:  # this run starts where tools/ota/push.py takes over a running node
            resets.append(simboard.SOFT_RESET)
            cause = _push_boot(b, root, push, log)
            push = None
            if cause is None:
                crashes += 1
                cause = simboard.HARD_RESET
            resets.append(cause)
            if segment:
                ended = cause
                break
            b.reset(cause)  # machine.reset() after the push, or what cut it short
            _purge(baseline)
            _watch(clk, "ota")
            continue
        try:
            if _MP:
                _chip_filesystem(b)
            _exec_file(root.rstrip("/") + "/boot.py", {"__name__": "__main__"})
            _exec_file(root.rstrip("/") + "/main.py", {"__name__": "__main__"})
            log("[sim] main.py returned; the node idles at the REPL")
            clk.advance_to(end_us)
        except SimEnd:
            _boot_stat(clk, hw0, "end")
            final = _app_status()
            final["peaks"] = _app_peaks()
            break
        except simboard.NodeReset as r:
            _boot_stat(clk, hw0, "reset")
            resets.append(r.cause)
            log("[sim] t=%.1f s reset (cause %d: %s)" % (clk.now_us / 1e6, r.cause, r.why))
            if segment:
                ended = r.cause
                break
            b.reset(r.cause)
        except PowerLoss:
            _boot_stat(clk, hw0, "power")
            log("[sim] t=%.1f s power lost; power restored" % (clk.now_us / 1e6))
            resets.append(simboard.PWRON_RESET)
            if segment:
                ended = simboard.PWRON_RESET
                break
            b.power_cycle()
            _watch(clk, "power")
        except Exception as e:  # noqa: BLE001 - the firmware's crash is counted, as at the REPL
            crashes += 1
            log("[sim] t=%.1f s firmware raised, node halted at the REPL:" % (clk.now_us / 1e6))
            _print_exc(e)
            _boot_stat(clk, hw0, "crash")
            try:
                clk.advance_to(end_us)  # an armed watchdog resets it; else idle
            except SimEnd:
                break
            except simboard.NodeReset as r:
                resets.append(r.cause)
                if segment:
                    ended = r.cause
                    break
                b.reset(r.cause)
        _purge(baseline)
    # the run is over: power the node off (its modules go) so that the
    # snapshot and the report below do not compete with its RAM - a run
    # that ends at a power cut or a reset leaves the loop with the node's
    # heap as full as the cut found it
    _purge(baseline)
    clk.clear()
    b.timers = []
    b.wlans = []
    b.flash.sync()
    gc.collect()
    if ended:  # this run ends at the reset; the host boots the next from its flash
        print("SIM-RESET %d %d" % (ended, clk.now_us // 1000))
    if segment:  # NVS (the device key too), otadata, RTC, for the next run: soak only
        print("SIM-SNAPSHOT " + json.dumps(_snapshot(b)))
    out = {"sim_seconds": duration_s, "boots": b.boots, "resets": resets,
           "wdt_resets": b.wdt_resets, "crashes": crashes,
           "peak_heap_bytes": None, "min_free_heap_bytes": None, "harness_heap_bytes": None,
           "sensor_samples_produced": chip.produced if chip else 0,
           "sensor_samples_dropped": chip.dropped if chip else 0,
           "timing": timing.P.name,
           # the sampler's timer (id 0): longest wait from a tick to its callback
           "pump_latency_ms_max": b.timer_latency_max_us.get(0, 0) / 1000,
           "fifo_fill_max": chip.fill_max if chip else 0,
           "fifo_fill_max_ms": chip.fill_max_us // 1000 if chip else None,
           "first_sample_lost_ms": chip.first_drop_us // 1000 if chip and chip.dropped else None,
           "sample_losses": [[d[0] // 1000, d[1]] for d in chip.drops] if chip else [],
           "scheduler_dropped": clk.sched_dropped,
           "blocked_ms": clk.blocked_us // 1000,
           # blocking calls that ran no callbacks for 20 ms or more:
           # {kind: [count, longest ms, when (s)]}
           "long_calls": {k: [v[0], v[1] / 1000, v[2] // 1000000] for k, v in clk.long_calls.items()},
           "node": final}
    out["power"] = b.power.report()  # time per power state (tools/power prices it)
    if out["power"]["timeline"] and not _MP:  # on MicroPython: streamed (power_bins)
        out["power"]["timeline"]["cols"] = {name: list(col[:n])
                                            for name, col, n in b.power.timeline_columns()}
    if b.battery is not None:
        out["battery"] = b.battery.report()
    if net is not None:
        out["power"].update(tx_bytes=net.tx_bytes, rx_bytes=net.rx_bytes)
        out["net"] = {"dns_lookups": net.dns_lookups, "handshakes": net.handshakes,
                      "ciphers": net.ciphers, "handshake_crypto_ms_max": net.crypto_us_max // 1000,
                      "wait_ms": net.stalls_ms,
                      "held_wall_ms": vclock.clock.held_wall_us // 1000}
    if heap is not None:
        out.update(peak_heap_bytes=heap.peak, peak_heap_at_s=heap.peak_at_s, min_free_heap_bytes=heap.min_free,
                   harness_heap_bytes=heap.harness, heap_peak_per_hour=heap.hour_peak,
                   heap_min_free_per_hour=heap.hour_min_free)
    return out


def _snapshot(b):
    snap = b.snapshot()
    snap["rtc_mem"] = binascii.hexlify(b.rtc_mem).decode()
    snap["rtc_base"] = b.rtc_base
    return snap


def _board(spec):
    kw = {"flash": spec["flash"], "flash_existing": True, "mount": None if _MP else "/",
          "start_us": spec.get("start_ms", 0) * 1000}
    if "uid" in spec:
        kw["uid"] = binascii.unhexlify(spec["uid"])
    b = simboard.new_board(**kw)
    snap = spec.get("snapshot")
    if snap:  # a run that goes on from an earlier one's end
        b.restore(snap)
        b.rtc_mem = binascii.unhexlify(snap.get("rtc_mem", ""))
        b.rtc_base = tuple(snap["rtc_base"]) if snap.get("rtc_base") else None
    return b


def _carve(region):
    """Give the node the contiguous region reserved before the harness
    was built, and nothing else: every other free byte (the harness's
    slack, the holes its set-up left) is taken by ballast, counted as the
    harness's. So the node's heap is one clean area of its size, as after
    the chip's reset, not the leftovers between the harness's objects."""
    gc.collect()
    fill = [None] * 512
    n = 0
    size = 1 << 16
    while size >= 16 and n < len(fill):
        try:
            fill[n] = bytearray(size)
            n += 1
        except MemoryError:
            size >>= 1
    region[0] = None
    gc.collect()
    return fill


_ballast = [None]
world_region = [None]  # [bytearray]: the node's heap while the harness is built


def power_bins(meter):
    """The power meter's timeline, a line per column: SIM-POWERBINS <column>
    <value>,<value>,... - written number by number from its arrays, as the
    heap left after a run has no room for copies (tools/sim/runner.py puts
    them into the summary's power.timeline.cols)."""
    for name, col, n in meter.timeline_columns():
        sys.stdout.write("SIM-POWERBINS " + name + " ")
        for i in range(n):
            sys.stdout.write(str(col[i]) if i == 0 else "," + str(col[i]))
        sys.stdout.write("\n")


def _main():
    duration = float(sys.argv[1])  # seconds (a run that goes on from a reset: any ms)
    node_heap = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    # the node's heap, reserved first: the harness is built above it
    region = [bytearray(node_heap - 64)] if node_heap else None
    world_region[0] = region
    with open(sys.argv[2]) as f:  # a file: the unix port dies on a long argv
        spec = json.load(f)
    sensor = spec.pop("sensor", None)
    image = {"nvs": spec.pop("nvs", {})}
    b = _board(spec)
    if duration == 0:  # footprint probe: what the harness holds before boot
        foot = run("/", 1, board=b, sensor=sensor, image=image, world=spec, probe=True)
        print("SIM-FOOTPRINT %d" % foot)
        return
    summary = run("/", duration, board=b, sensor=sensor, image=image, world=spec)
    power_bins(b.power)
    sys.stdout.write("SIM-SUMMARY ")
    json.dump(summary, sys.stdout)  # streamed: the waveform peaks are tens of KB as text
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        _main()
    except KeyboardInterrupt:  # the host's Ctrl-C reached the VM too: it says so, quietly
        sys.exit(130)
