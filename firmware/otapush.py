"""`make ota-push` on a node: the update downloads while the node goes on
sampling and detecting, in both layouts (frozen firmware, or code loaded
from the flash's .mpy files: a deployed node and every slot an update
installed).

    from firmware import otapush
    m = otapush.run(url, deadline_ms)   # ota.install's Manifest, or OtaError; then reset

tools/ota/push.py runs this at the REPL after Ctrl-C and a soft reset: the
app is not running (main.py did not run), and the watchdog the app armed
still is. In this order, against the heap's fragmentation (the GC
collecting every 2 KB meanwhile, as at the app's boot): the manifest's
buffer (8.6 KB, the largest block) and the files' 1 KB read buffer, the
key's device id and what the download and the detector need from the
config (the code and text of key and config leave the heap before
anything long-lived lands beyond them), then the sensor, the
detector and the pump, as the app starts them (start.sampling), whose
timer drains the FIFO and runs detection in its callback, in the
download's socket waits too (they run callbacks every 100 ms); then the
download's code. The pump feeds the watchdog until the download's
deadline. When the download ends (installed or refused), its code leaves
the heap and the alerts raised meanwhile and the latest vitals are
sealed into the outbox, the pump still running; then it stops. The app
sends them after the reset (no uplink runs here).

Heap (32-bit MicroPython 1.27, 112 KB, deployed layout; docs/security.md
section 5 has every step and the command): 91.5 KB free after boot.py;
28.9 KB once sampling runs; 13.3 KB with the manifest verified and parsed,
~12 KB at the least while the files stream (largest hole ~600 B: nothing
then allocates more than the LittleFS file object); 26 KB again once the
download's code has left. What made it fit: the manifest's file list is
kept as byte spans of the signed text and parsed one entry at a time
(sjson spans: 8.9 KB of objects before), the files' read buffer is the
tail of the first block, the config, key, stage 0's lock-down and the
app's modules are not held during the download, and lib/rsapss no longer
builds a 3 KB string of the modulus.

Guarantees: the FIFO is drained throughout and the sampler counts any
sample lost; no alert raised during the download is lost (on flash
before this returns or raises); the watchdog is fed, so a long download
is not cut by it.
Non-guarantees: no vitals frame is made during the download, one with
the latest values at its end; of more than 16 alert changes in one
download only the last 16 are sent (lib/alerts' event ring); a step that
runs no callbacks (a flash sector erase while the slot is written, RSA
verification) delays the drain by its length (docs/timing.md). A bound
bundle loads firmware/devid (the device id's form, 239 B of .mpy) for the
manifest's device list and the keystore for its binding, and lets both go
before the files stream; tested on the deployed layout with a bound
bundle and with a 62-file, 8,176-byte manifest (about 11.7 KB free, largest
hole 544-672 B while the files stream).
"""
from micropython import const

# ota.BUF_LEN and ota.CHUNK_LEN (a test checks), without importing ota yet:
# the manifest's buffer and the files' 1 KB read buffer, made first
BUF_LEN = const(7 + 384 + 8192)
CHUNK_LEN = const(1024)
_WDT_MS = const(10000)  # the app's watchdog (firmware/app.py WDT_TIMEOUT_MS), still running
_BOOT_GC_BYTES = const(2048)


class _Key:
    """What the install needs of the keystore: the device id, and for a
    bound bundle its "ota-bind" check (the keystore is loaded for it)."""

    def __init__(self, device_id):
        self.device_id = device_id

    def verify(self, purpose, tag, *parts):
        """The keystore's verify (a bound bundle's binding, checked once the
        manifest's device list was); its code, and the device id check's,
        leave the heap again before the files stream."""
        import sys
        try:
            from firmware import keystore
            ks = keystore.load()
            return ks is not None and ks.verify(purpose, tag, *parts)
        finally:
            ks = None
            for name in ("keystore", "devid"):
                _unload(name)
            sys.modules.pop("hmacsha", None)


def run(url, deadline_ms=None, timeout_ms=10000):
    import gc
    import sys

    import machine
    buf = bytearray(BUF_LEN)  # the largest block first, while the heap is whole
    chunk = bytearray(CHUNK_LEN)  # (not one block with it: that needs 1 KB more in one piece)
    gc.threshold(_BOOT_GC_BYTES)  # as the app's boot: garbage goes before the next long-lived object
    wdt = machine.WDT(timeout=_WDT_MS)
    ks, n, ca, det_cfg = _settings(url)  # ConfigError: nothing is fetched, nothing sampled
    for name in ("keystore", "lockdown"):  # until a bound bundle or the record; lockdown: stage 0's
        _unload(name)
    sys.modules.pop("hmacsha", None)
    gc.collect()
    from firmware import start
    smp, det, pump = start.sampling(wdt, det_cfg, _detector)
    _unload("start")
    from firmware.httpget import DEADLINE_MS
    deadline_ms = deadline_ms or DEADLINE_MS
    pump.stall_ms = deadline_ms + 30000  # the pump feeds the watchdog until the deadline
    gc.collect()
    gc.threshold(-1)
    try:
        m = _update(url, timeout_ms, deadline_ms, buf, chunk, ks, n, ca)
    except BaseException:
        buf = chunk = None
        _done(ks, det, pump)
        raise
    buf = chunk = None
    m.files = m.image = m.body = None  # the caller reports version and counter
    _done(ks, det, pump)
    return m


def _settings(url):
    """(_Key or None without a device key, the OTA key's modulus, the CA's
    DER for https, the detector's settings): what the download and
    detection need of key and config, whose code and text leave the heap
    before sampling starts."""
    from firmware import config, keystore
    ks = keystore.load()
    cfg = config.load(ks.device_id if ks else None)
    out = (_Key(ks.device_id) if ks else None, int(cfg["ota_pubkey"]["n"], 16),
           config.pem_der(cfg["ca_cert"]) if url.startswith("https://") else None,
           {"mains_hz": cfg["mains_hz"], "alerts": cfg["alerts"],
            "led_floor": cfg["power"]["led_floor"]})
    _unload("config")
    _unload("devid")  # config's device id check; a bound manifest's check loads it again
    return out


def _detector(smp, cfg):
    """The app's detector (firmware/app._detector), without loading the app."""
    if smp is None:
        return None
    from firmware.detect import Detect
    return Detect(smp, mains=cfg["mains_hz"], thresholds=cfg["alerts"],
                  led_floor=cfg["led_floor"])


def _update(url, timeout_ms, deadline_ms, buf, chunk, ks, n, ca):
    from firmware import ota  # the update's code last: it leaves before the record
    from firmware.httpget import HttpSource
    return ota.install(HttpSource(url, ca, timeout_ms, deadline_ms), ks, n, buf=buf, chunk=chunk)


def _unload(name):
    import sys

    import firmware
    sys.modules.pop("firmware." + name, None)
    if hasattr(firmware, name):
        delattr(firmware, name)


def _done(ks, det, pump):
    """The download's code leaves; the alerts raised during it and the
    latest vitals go into the outbox, sampling still on; then the pump
    stops (the reset follows)."""
    import gc
    for name in ("ota", "httpget", "sjson", "otatrial", "storage"):
        _unload(name)
    gc.collect()
    try:
        if det is not None and ks is not None:
            _record(det, pump)
    finally:
        pump.stop()
    smp = pump.smp
    if smp is None or det is None:
        print("vitalnode: no sensor answered: nothing sampled during the update")
    else:  # what `make ota-push` shows (and the simulator's tests read)
        print("vitalnode: sampled during the update: %d samples, lost %d, beats %d ECG %d pulse"
              % (smp.times.head, smp.lost + smp.lost_estimated, det.seen_qrs, det.seen_pulse))


def _record(det, pump):
    """The alerts raised during the download and the latest vitals, into
    the outbox as the app would have put them."""
    try:
        import esp32

        from firmware import keystore, outbox, version
        ks = keystore.load()
        from firmware.seqno import SeqNo
        from firmware.telemetry import Telemetry
        tm = Telemetry(ks, outbox.Outbox(), SeqNo(esp32.NVS("vn_tel")), version.code())
        al = det.alerts
        i = max(0, al.count - len(al.ev))  # its ring: the last 16
        stopped = False
        while True:  # the pump still runs: an alert may change meanwhile
            while i < al.count:
                kind, raised, at = al.event(max(i, al.count - len(al.ev)))
                tm.alert(kind, raised, at, det)
                i += 1
            if stopped:
                break
            pump.stop()  # then a last look: nothing changes after this
            stopped = True
        tm.vitals(det)
    except (OSError, MemoryError) as e:  # flash or heap trouble: said, as the app says it
        print("vitalnode: alerts of the update not queued:", repr(e))
