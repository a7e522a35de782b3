"""Boot a simulated node: boot.py then main.py on whatever runtime runs this
(CPython with shims, or the MicroPython unix port), on the virtual clock,
through resets, until `duration_s` of simulated time has passed.

MicroPython-compatible on purpose: `make sim` runs it with `micropython
tools/vm/node.py ROOT DURATION [SPEC_FILE]`; under CPython tools.sim
imports it. SPEC_FILE (JSON, written by tools/sim, owner-only: it holds
the node's key) says what the board is given:
  sensor    simmax.attach_spec's spec, or absent for no sensor
  image     what provisioning writes (NVS + files), or absent
  uid       the board's unique id (hex), default simboard's
  wifi      [[ssid, password, rssi], ...] access points in range
  faults    [{"kind": k, "at": s, "until": s}, ...] with k one of
            wifi (no AP), broker (the host stops the broker: the node
            prints SIM-FAULT and waits for a line on stdin), finger
            (finger off the sensor), motion (motion artefact on PPG and ECG)
  progress_s  print SIM-PROGRESS <json> (firmware.app.status()) this often
  pace      1.0: sleeps take real time too (a real-time run)
Lines for the host: SIM-RECSTART <ms> when the sensor starts streaming
its recording from the top (every configuration), SIM-PROGRESS, SIM-FAULT,
and last SIM-SUMMARY <json>.
"""
import gc
import sys

# the chip's built-in modules, shimmed here: imported by the harness so
# their heap counts as harness, not as the node's (on the ESP32 they are in
# ROM and cost the node no heap)
import esp32  # noqa: F401
import machine  # noqa: F401
import network  # noqa: F401
import simboard
import vclock
from flashfs import PowerLoss


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


def attach_sensor(spec):
    """Put the simulated sensor chip on the board (simmax.attach_spec)."""
    import simmax
    return simmax.attach_spec(spec)


def _use_flash(b):
    """The firmware's files live on the board's flash model."""
    try:
        from firmware import storage
    except ImportError:  # a test's stand-in firmware without the package
        return
    storage.use(b.fs)


def provision(b, image):
    """Put what the provisioning tool writes onto the simulated board:
    image = {"nvs": {namespace: {key: ["blob", hex] | ["i32", n]}},
             "files": {path: text}} (tools/provision/image.py builds it)."""
    import binascii
    for ns, keys in image.get("nvs", {}).items():
        d = b.nvs.setdefault(ns, {})
        for k, (kind, v) in keys.items():
            d[k] = (kind, v if kind == "i32" else binascii.unhexlify(v))
    for path, text in image.get("files", {}).items():
        with b.fs.open(path, "w") as f:
            f.write(text)


def _prepare(b, image, sensor):
    """The board as the firmware finds it at power-on: its flash routed to
    the firmware, provisioned from `image`, the sensor attached; returns
    the simulated chip (or None)."""
    _use_flash(b)
    if image:
        provision(b, image)
        image.clear()  # the node's files are on its flash now, not in the harness
    return attach_sensor(sensor) if sensor else None


def _app_status():
    app = sys.modules.get("firmware.app")
    return app.status() if app is not None and hasattr(app, "status") else {}


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


def _faults(b, chip, clk, faults, on_fault):
    """Schedule the world's faults on the virtual clock."""
    def edge(kind, on):
        if kind == "wifi":
            b.wifi.down = on
            if on:
                b.wifi.drop()
        elif kind == "broker":
            on_fault("broker " + ("down" if on else "up"))
        elif kind == "finger" and chip is not None:
            chip.knobs.finger_off = on
        elif kind == "motion" and chip is not None:
            chip.knobs.motion = (clk.now_us, clk.now_us + 3600000000, 40000) if on else None
        print("SIM-EVENT %d %s %s" % (clk.now_us // 1000, kind, "start" if on else "end"))
    for f in faults:
        clk.call_at(clk.now_us + int(f["at"] * 1000000), lambda k=f["kind"]: edge(k, True))
        clk.call_at(clk.now_us + int(f["until"] * 1000000), lambda k=f["kind"]: edge(k, False))


def run(root, duration_s, board=None, log=print, sensor=None, image=None, world=None):
    world = world or {}
    b = board or simboard.new_board()
    for ssid, key, rssi in world.get("wifi", ()):
        b.wifi.add_ap(ssid, key, rssi)
    chip = _prepare(b, image, sensor)
    clk = vclock.clock
    if chip is not None:
        chip.on_stream = lambda: print("SIM-RECSTART %d" % (clk.now_us // 1000))
    _faults(b, chip, clk, world.get("faults", ()), world.get("on_fault", _ask_host))
    clk.pace = world.get("pace", 0)
    harness = 0
    if sys.implementation.name == "micropython":
        gc.collect()
        harness = gc.mem_alloc()  # the shims and this harness share the heap
    end_us = clk.now_us + duration_s * 1000000
    clk.call_at(end_us, _end)
    every = world.get("progress_s", 0)
    if every:
        import json

        def progress():
            st = _app_status()
            st["t"] = clk.now_us // 1000000
            print("SIM-PROGRESS " + json.dumps(st))
        clk.call_at(clk.now_us + every * 1000000, progress, every * 1000000)
    final = {}
    peak = [0]

    def sample_heap():  # live heap after a collection, once a simulated second
        gc.collect()
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a
    if sys.implementation.name == "micropython":
        clk.call_at(clk.now_us + 1000000, sample_heap, 1000000)
    baseline = set(sys.modules)
    resets = []
    crashes = 0
    while True:
        try:
            g = {"__name__": "__main__"}
            _exec_file(root + "/boot.py", g)
            _exec_file(root + "/main.py", {"__name__": "__main__"})
            log("[sim] main.py returned; the node idles at the REPL")
            clk.advance_to(end_us)
        except SimEnd:
            final = _app_status()
            final["peaks"] = _app_peaks()
            break
        except simboard.NodeReset as r:
            resets.append(r.cause)
            log("[sim] t=%.1f s reset (cause %d: %s)" % (clk.now_us / 1e6, r.cause, r.why))
            b.reset(r.cause)
        except PowerLoss:
            log("[sim] t=%.1f s power lost during a flash write; power restored" % (clk.now_us / 1e6))
            b.power_cycle()
        except Exception as e:
            crashes += 1
            log("[sim] t=%.1f s firmware raised, node halted at the REPL:" % (clk.now_us / 1e6))
            _print_exc(e)
            try:
                clk.advance_to(end_us)  # an armed watchdog resets it; else idle
            except SimEnd:
                break
            except simboard.NodeReset as r:
                resets.append(r.cause)
                b.reset(r.cause)
        _purge(baseline)
    # the run is over: power the node off (its modules, timers and radio go)
    # so that building the report below does not compete with its RAM
    _purge(baseline)
    clk._events = []
    b.timers = []
    b.wlans = []
    gc.collect()
    return {"sim_seconds": duration_s, "boots": b.boots, "resets": resets,
            "wdt_resets": b.wdt_resets, "crashes": crashes,
            "peak_heap_bytes": peak[0] - harness if sys.implementation.name == "micropython" else None,
            "harness_heap_bytes": harness if sys.implementation.name == "micropython" else None,
            "sensor_samples_produced": chip.produced if chip else 0,
            "sensor_samples_dropped": chip.dropped if chip else 0,
            "node": final}


def _main():
    import json
    root = sys.argv[1]
    duration = int(sys.argv[2])
    spec = {}
    if len(sys.argv) > 3:  # a file: this unix-port build dies on a long argv
        with open(sys.argv[3]) as f:
            spec = json.load(f)
    sensor = spec.pop("sensor", None)
    image = spec.pop("image", None)
    if "romfs" in spec:
        _mount_romfs(spec.pop("romfs"))
    if duration == 0:  # footprint probe: what the harness holds before boot
        chip = _prepare(_board(spec), image, sensor)  # noqa: F841 (kept alive)
        gc.collect()
        print("SIM-FOOTPRINT %d" % gc.mem_alloc())
        return
    summary = run(root, duration, board=_board(spec), sensor=sensor, image=image, world=spec)
    sys.stdout.write("SIM-SUMMARY ")
    json.dump(summary, sys.stdout)  # streamed: the waveform peaks are tens of KB as text
    sys.stdout.write("\n")


_ROM = []  # the image: flash on the chip, so the harness holds it


def _mount_romfs(path):
    """The firmware as a frozen build holds it: a ROMFS image whose .mpy
    files run in place (tools/sim/runner.stage_romfs), first on sys.path."""
    import vfs
    with open(path, "rb") as f:
        _ROM.append(f.read())
    vfs.mount(vfs.VfsRom(_ROM[0]), "/rom")
    sys.path[:0] = ["/rom", "/rom/lib"]


def _board(spec):
    if "uid" in spec:
        import binascii
        return simboard.new_board(uid=binascii.unhexlify(spec["uid"]))
    return simboard.new_board()


if __name__ == "__main__":
    _main()
