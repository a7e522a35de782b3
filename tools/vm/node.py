"""Boot a simulated node: boot.py then main.py on whatever runtime runs this
(CPython with shims, or the MicroPython unix port), on the virtual clock,
through resets, until `duration_s` of simulated time has passed.

MicroPython-compatible on purpose: `make sim RUNTIME=micropython` runs it
with `micropython tools/vm/node.py ROOT DURATION`; under CPython tools.sim
imports it. The last line printed is `SIM-SUMMARY <json>`.
"""
import gc
import sys

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


def run(root, duration_s, board=None, log=print):
    b = board or simboard.new_board()
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
            "peak_heap_bytes": peak[0] if sys.implementation.name == "micropython" else None}


def _main():
    import json
    root = sys.argv[1]
    duration = int(sys.argv[2])
    summary = run(root, duration)
    print("SIM-SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    _main()
