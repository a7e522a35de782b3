# stage0.py - VitalNode's stage 0, run by boot.py first on every reset and
# never replaced by an OTA bundle (only `make deploy` over USB writes it, as
# /stage0.mpy, or a firmware built from manifest.py freezes it), like MCUboot.
# Compiled, not source: the port compiles boot.py from source at every
# boot, and that parse would cost the node heap it never gets back whole.
#
# Its NVS layout is a contract: slots already in the field read and write
# it through this module (firmware/otatrial.py, firmware/ota.py), so fields
# keep their names, meanings and order.
#
# 1. Ctrl-C off before anything else (firmware/lockdown.py re-enables it on
#    an open node).
# 2. Pick the app slot, /a or /b on the flash, from the OTA state in NVS
#    namespace "vn_ota": one record (nvsrec.Record "st", 12 i32 fields in
#    this order), written as one key per transition, so a power loss leaves
#    the old or the new state, never a mix (ESP-IDF writes each NVS key
#    on its own; several keys would not change together):
#      act   confirmed slot (0 = a, 1 = b)    pend  slot on trial, or -1
#      tries boots of the trial so far        ctr   security counter (confirmed)
#      ver   confirmed version code           pver/pctr  the trial's
#      img   1: the trial also switched the MicroPython image to app
#            partition ipart (0 = ota_0, 1 = ota_1)
#      last  outcome for the app to log (see OUTCOMES), lastv its version
#    A trial slot gets MAX_TRIES boots; each boot has a CONFIRM_MS deadline
#    that resets the node unless the app confirmed (firmware/otatrial.confirm):
#    a periodic timer checks it every DEADLINE_CHECK_MS, so a tick the
#    scheduler's full queue drops (the port drops it silently) only delays
#    the reset to the next tick.
#    Then the trial is abandoned and the confirmed slot boots again. A
#    trial whose MicroPython image is not the one running (the ESP-IDF
#    bootloader rolled it back, or power failed before set_boot) is
#    abandoned at once.
# 3. The lock-down check from the chosen slot; main.py starts its app.
#    The app forgets this module once it runs (sys.modules), as it is
#    needed again only to confirm or install an update.
# Guarantee: only a slot that passed every hash check and was committed as
# the trial, or the last confirmed slot, is put on sys.path.
# Non-guarantee: a slot is not re-hashed at every boot (flash is trusted
# once written; LittleFS is copy-on-write).
NS = "vn_ota"
SLOTS = ("a", "b")
MAX_TRIES = 2
CONFIRM_MS = 120000
DEADLINE_TIMER = 3  # hardware timer id reserved for the confirm deadline
DEADLINE_CHECK_MS = 5000
OUTCOMES = {1: "revert", 2: "revert-image", 3: "confirm"}
_KEYS = ("act", "pend", "tries", "ctr", "ver", "pver", "pctr", "img", "ipart", "last", "lastv", "floor")
FMT = ">12i"  # the record "st": _KEYS in order
RECORD = "st"
_DEFAULT = {"pend": -1}


def _record(nvs):
    from nvsrec import Record
    if nvs is None:
        import esp32
        nvs = esp32.NVS(NS)
    return Record(nvs, RECORD, FMT)


def state(nvs=None):
    """The OTA state as a dict (never written: every field 0, pend -1)."""
    vals = _record(nvs).read()
    if vals is None:
        return {k: _DEFAULT.get(k, 0) for k in _KEYS}
    return dict(zip(_KEYS, vals))


def commit(changes, nvs=None):
    """Change some fields of the OTA state: one record write (old or new
    after any power cut)."""
    rec = _record(nvs)
    vals = rec.read()
    st = dict(zip(_KEYS, vals)) if vals is not None else {k: _DEFAULT.get(k, 0) for k in _KEYS}
    for k in changes:
        if k not in st:
            raise KeyError(k)
        st[k] = changes[k]
    rec.write([st[k] for k in _KEYS])


def encode(changes):
    """Host tools: the NVS blob of a state with `changes` from the default
    ({key: ["blob", hex]} for the record's first key)."""
    import binascii

    from nvsrec import encode as enc
    st = {k: _DEFAULT.get(k, 0) for k in _KEYS}
    st.update(changes)
    return {RECORD + "0": ["blob", binascii.hexlify(enc(FMT, [st[k] for k in _KEYS])).decode()]}


def part_index(part):
    """Index (0/1) of an app partition: ota_0 or ota_1."""
    return 1 if part.info()[4].endswith("1") else 0


def running_part():
    """Index of the app partition the MicroPython image runs from."""
    import esp32
    # the 1.27 stubs type Partition's id as a label (str); the int constants
    # BOOT and RUNNING are the documented other form
    return part_index(esp32.Partition(esp32.Partition.RUNNING))  # pyright: ignore[reportArgumentType]


def choose(nvs=None, part=None):
    """Decide this boot's slot, committing the trial bookkeeping; returns
    (slot index, on_trial)."""
    st = state(nvs)
    p = st["pend"]
    if p < 0:
        return st["act"], False
    if st["img"] and (running_part() if part is None else part) != st["ipart"]:
        commit({"pend": -1, "tries": 0, "img": 0, "last": 2, "lastv": st["pver"]}, nvs)
        return st["act"], False
    if st["tries"] >= MAX_TRIES:
        commit({"pend": -1, "tries": 0, "img": 0, "last": 1, "lastv": st["pver"]}, nvs)
        return st["act"], False
    commit({"tries": st["tries"] + 1}, nvs)
    return p, True


_t0 = [0]  # ticks_ms when this boot's trial started


def _deadline(t):
    # the trial has not confirmed in time: reset, which counts a failed boot
    import time
    if time.ticks_diff(time.ticks_ms(), _t0[0]) >= CONFIRM_MS and state()["pend"] >= 0:
        import machine
        machine.reset()


def arm_deadline():
    """Start the trial's confirm deadline (a periodic check; see above)."""
    import machine
    import time
    _t0[0] = time.ticks_ms()
    machine.Timer(DEADLINE_TIMER).init(mode=machine.Timer.PERIODIC, period=DEADLINE_CHECK_MS,
                                       callback=_deadline)


def start():
    import sys

    import micropython
    micropython.kbd_intr(-1)
    import os

    import machine
    causes = {1: "power-on", 2: "hard reset", 3: "watchdog", 4: "deep-sleep wake", 5: "software reset"}
    print("vitalnode boot: reset cause", causes.get(machine.reset_cause(), machine.reset_cause()))
    slot, trial = choose()
    root = "/" + SLOTS[slot]
    try:
        os.stat(root + "/firmware")
    except OSError:  # no slot installed: run what is on the path (simulator, old deploy)
        root = None
    if root:
        sys.path[:0] = [root, root + "/lib"]
        print("vitalnode boot: app slot", SLOTS[slot], "(trial)" if trial else "")
    if trial:
        arm_deadline()
    from firmware import lockdown
    lockdown.at_boot()  # main.py then starts firmware.app from the same slot

