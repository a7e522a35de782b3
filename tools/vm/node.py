"""Boot a simulated node: boot.py then main.py on whatever runtime runs this
(CPython with shims, or the MicroPython unix port), on the virtual clock,
through resets, until `duration_s` of simulated time has passed.

MicroPython-compatible on purpose: `make sim RUNTIME=micropython` runs it
with `micropython tools/vm/node.py ROOT DURATION`; under CPython tools.sim
imports it. The last line printed is `SIM-SUMMARY <json>`.
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


def run(root, duration_s, board=None, log=print, sensor=None, image=None):
    b = board or simboard.new_board()
    chip = _prepare(b, image, sensor)
    harness = 0
    if sys.implementation.name == "micropython":
        gc.collect()
        harness = gc.mem_alloc()  # the shims and this harness share the heap
    clk = vclock.clock
    end_us = clk.now_us + duration_s * 1000000
    clk.call_at(end_us, _end)
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
    return {"sim_seconds": duration_s, "boots": b.boots, "resets": resets,
            "wdt_resets": b.wdt_resets, "crashes": crashes,
            "peak_heap_bytes": peak[0] - harness if sys.implementation.name == "micropython" else None,
            "harness_heap_bytes": harness if sys.implementation.name == "micropython" else None,
            "sensor_samples_produced": chip.produced if chip else 0,
            "sensor_samples_dropped": chip.dropped if chip else 0}


def _main():
    import json
    root = sys.argv[1]
    duration = int(sys.argv[2])
    sensor = json.loads(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    image = None
    if len(sys.argv) > 4:  # the provisioning image, a file the host wrote
        with open(sys.argv[4]) as f:
            image = json.load(f)
    if duration == 0:  # footprint probe: what the harness holds before boot
        chip = _prepare(simboard.new_board(), image, sensor)  # noqa: F841 (kept alive)
        gc.collect()
        print("SIM-FOOTPRINT %d" % gc.mem_alloc())
        return
    summary = run(root, duration, sensor=sensor, image=image)
    print("SIM-SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    _main()
