"""The trial of an installed update: confirm it, or report what stage0 did.

    from firmware import otatrial
    pend, last = otatrial.flags()    # the OTA state's two fields the start needs
    if last:
        otatrial.at_start()          # log stage0's revert as a security event
    ...
    if pend >= 0 and healthy:
        otatrial.confirm()           # the trial slot becomes the confirmed one
    if pend >= 0 and no_sensor:
        otatrial.abandon("no sensor")   # reverted at this reset, not at the deadline

Apart from ota.py (install, fetch, verify: large, needed only while
updating), so a running node holds only this. The NVS layout is stage0's
(namespace "vn_ota", the record in its header).
Guarantees: confirm() advances the security counter and the time floor
(to the trial's `created`, kept under "pfloor" by ota.install, but never
past trusted time + clock.SKEW_S, and not at all while the clock is
unset) in the same NVS commit that confirms the slot; a reverted trial
moves neither; it is a no-op when nothing is on trial.
"""
import esp32
from micropython import const

from firmware import seclog

_Y2K = const(946684800)  # Unix seconds at 2000-01-01, the NVS time base

def flags():
    """(slot on trial or -1, stage0's last outcome code or 0)."""
    import stage0
    st = stage0.state()
    return st["pend"], st["last"]


def pending():
    """True while a new slot is on trial (not yet confirmed)."""
    return flags()[0] >= 0


def confirm():
    """Make the trial slot the confirmed one and advance the security
    counter; call only after the health check passed. Returns False if
    nothing was on trial."""
    import stage0
    st = stage0.state()
    if st["pend"] < 0:
        return False
    if st["img"]:  # before the NVS commit: a lost commit only repeats the trial
        try:
            esp32.Partition.mark_app_valid_cancel_rollback()
        except OSError:
            pass  # firmware built without rollback support: nothing to cancel
    ctr = max(st["ctr"], st["pctr"])
    from firmware.clock import SKEW_S, now_unix
    now = now_unix()  # trusted, or 0: then the floor stays where it is
    pf = min(_get(PFLOOR), now - _Y2K + SKEW_S) if now else 0
    stage0.commit({"act": st["pend"], "pend": -1, "tries": 0, "img": 0, "ver": st["pver"],
                 "ctr": ctr, "last": 0, "floor": max(st["floor"], pf)})
    seclog.record("ota-confirm", version_code=st["pver"], counter=ctr, slot=stage0.SLOTS[st["pend"]])
    return True


def abandon(why):
    """The trial can never pass its health check (no sensor answers on this
    slot): use up its boots and reset now, so stage0 reverts it at this
    boot's end instead of after MAX_TRIES confirm deadlines (a monitoring
    gap of minutes). Does not return."""
    import machine
    import stage0
    seclog.record("ota-abandon", reason=why, version_code=stage0.state()["pver"])
    stage0.commit({"tries": stage0.MAX_TRIES})
    machine.reset()


REVERTED = "bad"  # NVS key (namespace vn_ota, beside stage0's record): i32 version code
PFLOOR = "pfloor"  # NVS key: the trial's `created` (s since 2000), the floor once confirmed


def _get(key):
    import stage0
    try:
        return esp32.NVS(stage0.NS).get_i32(key)
    except OSError:  # ENOENT: never written
        return 0



def reverted():
    """Version code of the newest update that failed its trial (0: none);
    ota.install refuses it and anything not newer."""
    return _get(REVERTED)


def at_start():
    """Record what the boot stage decided since the last start (a revert).
    A trial that used up its boots without confirming (it failed its health
    check: outcome 1) is remembered by version before `last` is cleared, so
    a power cut in between only repeats this. An image the bootloader did not
    run (outcome 2: also a power cut before set_boot) is not remembered."""
    import stage0
    st = stage0.state()
    if st["last"]:
        if st["last"] == 1 and st["lastv"] > reverted():
            nvs = esp32.NVS(stage0.NS)
            nvs.set_i32(REVERTED, st["lastv"])
            nvs.commit()
        seclog.record("ota-" + stage0.OUTCOMES.get(st["last"], "unknown"), version_code=st["lastv"])
        stage0.commit({"last": 0})
