"""`make ota-push` on a node: the update downloads while the node goes on
sampling and detecting.

    from firmware import otapush
    m = otapush.run(url, deadline_ms)   # ota.update's Manifest, or OtaError; then reset

tools/ota/push.py runs this at the REPL after Ctrl-C and a soft reset: the
app is not running (main.py did not run), and the watchdog the app armed
still is. In this order, against the heap's fragmentation: the manifest's
buffer (the largest block), the sampling code, key and config, then what
the app starts first - the sensor, the detector and the pump, whose timer
drains the FIFO and runs detection in its callback, in the download's
socket waits too (they run callbacks every 100 ms). The pump feeds the
watchdog until the download's deadline. When the download ends
(installed or refused), the alerts raised meanwhile and the latest
vitals are sealed into the outbox: the app sends them after the reset
(no uplink runs here).

This needs the frozen firmware. With the code loaded from files (a
deployed node, or a slot an update installed) the 112 KB heap cannot
hold detection beside the download (47 KB and 60 KB were left after
loading the code; docs/security.md section 5), so such a node downloads
without sampling, the pump only feeding the watchdog.

Guarantees: while sampling, the FIFO is drained throughout and the
sampler counts any sample lost; no alert raised during the download is
lost (on flash before this returns or raises); the watchdog is fed either
way, so a long download is not cut by it.
Non-guarantees: no vitals frame is made during the download, one with
the latest values at its end; of more than 16 alert changes in one
download only the last 16 are sent (lib/alerts' event ring); a step that
runs no callbacks (a flash sector erase while the slot is written, RSA
verification) delays the drain by its length (docs/timing.md).
"""
from micropython import const

BUF_LEN = const(7 + 384 + 8192)  # ota.BUF_LEN (a test checks), without importing ota yet


def run(url, deadline_ms=None, timeout_ms=10000):
    import gc
    import sys

    import firmware
    import machine
    buf = bytearray(BUF_LEN)  # the largest block first, while the heap is whole
    # code loaded from the flash's files sits in the heap; frozen code does not
    sample = sys.implementation.name != "micropython" or not firmware.__file__.startswith("/")
    if sample:
        gc.threshold(2048)  # as the app's boot: garbage goes before the next long-lived object
        import firmware.detect  # noqa: F401  the sampling code, loaded young
        import firmware.pump  # noqa: F401
        import firmware.sensor  # noqa: F401
    from firmware import config, keystore
    ks = keystore.load()
    cfg = config.load(ks.device_id if ks else None)  # ConfigError: nothing is fetched
    wdt = machine.WDT(timeout=10000)  # the app's (firmware/app.py), still running
    from firmware.httpget import DEADLINE_MS
    from firmware.pump import Pump
    deadline_ms = deadline_ms or DEADLINE_MS
    det = None
    if sample:  # as the app starts them (start.sampling, app's detector)
        from firmware import app, start
        _, det, pump = start.sampling(wdt, cfg, app._detector)
    else:
        print("vitalnode: not sampling during the update: its code is not frozen (no heap for both)")
        pump = Pump(None, None, wdt)
    pump.stall_ms = deadline_ms + 30000  # the pump feeds the watchdog until the deadline
    gc.collect()
    gc.threshold(-1)
    try:
        return _update(url, timeout_ms, deadline_ms, buf, ks, cfg)
    finally:
        pump.stop()
        if det is not None and ks is not None:
            buf = None
            _record(ks, det)


def _update(url, timeout_ms, deadline_ms, buf, ks, cfg):
    from firmware import ota  # the update's code last: it leaves once the node resets
    return ota.update(url, timeout_ms, deadline_ms, buf, ks, cfg)


def _record(ks, det):
    """The alerts raised during the download and the latest vitals, into
    the outbox as the app would have put them."""
    try:
        import esp32

        from firmware import outbox, version
        from firmware.seqno import SeqNo
        from firmware.telemetry import Telemetry
        tm = Telemetry(ks, outbox.Outbox(), SeqNo(esp32.NVS("vn_tel")), version.code())
        al = det.alerts
        for i in range(max(0, al.count - len(al.ev)), al.count):  # its ring: the last 16
            kind, raised, at = al.event(i)
            tm.alert(kind, raised, at, det)
        tm.vitals(det)
    except (OSError, MemoryError) as e:  # flash or heap trouble: said, as the app says it
        print("vitalnode: alerts of the update not queued:", repr(e))
