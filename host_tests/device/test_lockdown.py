"""Production lock-down at boot: an open node re-enables Ctrl-C, a locked
node keeps the REPL closed, and only a held BOOT button opens it - after
the key is erased."""
import simboard
import vclock
from devtest import ON_MICROPYTHON

from firmware import keystore, lockdown

KEY = "5a" * 32


def _press(at_ms, for_ms):
    """The BOOT button (GPIO0) held from at_ms to at_ms + for_ms after now."""
    pin = simboard.board.pin(lockdown.RECOVERY_PIN)
    clk = vclock.clock
    clk.call_at(clk.now_us + at_ms * 1000, lambda: pin.drive(0))
    clk.call_at(clk.now_us + (at_ms + for_ms) * 1000, lambda: pin.drive(None))


def _kbd_char():
    if ON_MICROPYTHON:
        return None  # the VM's interrupt char cannot be read back
    import micropython
    return micropython.kbd_intr_char


def test_an_open_node_boots_at_once_with_ctrl_c_enabled():
    keystore.install(KEY, 1)
    t0 = vclock.clock.now_us
    assert lockdown.at_boot() == lockdown.OPEN
    assert vclock.clock.now_us == t0  # no recovery window for an open node
    assert _kbd_char() in (3, None)


def test_a_locked_node_keeps_the_repl_closed_and_its_key():
    keystore.install(KEY, 1, lockdown=True)
    import micropython
    micropython.kbd_intr(-1)  # what boot.py does first
    t0 = vclock.clock.now_us
    assert lockdown.at_boot() == lockdown.LOCKED
    waited = (vclock.clock.now_us - t0) // 1000
    assert lockdown.RECOVERY_WINDOW_MS <= waited <= lockdown.RECOVERY_WINDOW_MS + 50
    assert _kbd_char() in (-1, None)
    assert keystore.load() is not None


def test_a_short_press_does_not_open_a_locked_node():
    keystore.install(KEY, 1, lockdown=True)
    _press(300, lockdown.RECOVERY_HOLD_MS // 2)
    assert lockdown.at_boot() == lockdown.LOCKED
    assert keystore.load() is not None and keystore.locked()


def test_holding_boot_erases_the_key_before_opening_the_repl():
    keystore.install(KEY, 1, lockdown=True)
    _press(500, lockdown.RECOVERY_HOLD_MS + 200)
    assert lockdown.at_boot() == lockdown.RECOVERED
    assert keystore.load() is None and not keystore.locked()
    assert _kbd_char() in (3, None)
    # the erase is committed: it survives a power cycle
    simboard.board.power_cycle()
    assert keystore.load() is None
    # and the next boot is an ordinary open one
    assert lockdown.at_boot() == lockdown.OPEN


def test_a_press_after_the_window_is_ignored():
    keystore.install(KEY, 1, lockdown=True)
    _press(lockdown.RECOVERY_WINDOW_MS + 100, lockdown.RECOVERY_HOLD_MS + 500)
    assert lockdown.at_boot() == lockdown.LOCKED
    assert keystore.load() is not None
