"""Production lock-down: the USB serial REPL stays closed on a locked node,
so a stolen node's key cannot be read through USB.

stage0 (run by boot.py) disables Ctrl-C first thing, then calls at_boot():
- OPEN (not locked; the provisioning default): Ctrl-C is enabled again and
  the REPL works as on any MicroPython board.
- LOCKED: Ctrl-C stays disabled, and the application never returns to the
  REPL (firmware/app.py resets the node on an error instead), so nothing
  on the serial line is ever executed: no raw REPL, no mpremote.
- RECOVERED: the node is locked and the BOOT button (GPIO0) is pressed
  within RECOVERY_WINDOW_MS of the boot starting and held RECOVERY_HOLD_MS.
  The device key and the lock flag are erased *before* the REPL opens, so
  the recovery path never exposes a key: the node comes up unprovisioned
  and must be provisioned again (`--rotate`, a new key).
  (GPIO0 is sampled after boot because holding it during reset selects the
  ESP32's ROM download mode.)

Non-guarantees: the ROM serial bootloader (esptool read_flash) is not
closed by this - only ESP32 flash encryption with NVS encryption and
secure download mode protect the key at rest (README "Security model").
A locked node waits up to RECOVERY_WINDOW_MS at every boot.
"""
import time

from micropython import const

RECOVERY_PIN = const(0)
RECOVERY_WINDOW_MS = const(2000)
RECOVERY_HOLD_MS = const(2000)
_POLL_MS = const(20)
_CTRL_C = const(3)

OPEN = "open"
LOCKED = "locked"
RECOVERED = "recovered"
state = OPEN


def _button_held(pin):
    """True once the button has been held RECOVERY_HOLD_MS, if it was
    pressed within RECOVERY_WINDOW_MS."""
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < RECOVERY_WINDOW_MS:
        if pin.value() == 0:
            t1 = time.ticks_ms()
            while pin.value() == 0:
                if time.ticks_diff(time.ticks_ms(), t1) >= RECOVERY_HOLD_MS:
                    return True
                time.sleep_ms(_POLL_MS)
        time.sleep_ms(_POLL_MS)
    return False


def at_boot():
    """Decide OPEN / LOCKED / RECOVERED for this boot (see module doc)."""
    global state
    import micropython
    from machine import Pin

    from firmware import keystore
    if not keystore.locked():
        micropython.kbd_intr(_CTRL_C)
        state = OPEN
    elif _button_held(Pin(RECOVERY_PIN, Pin.IN, Pin.PULL_UP)):
        keystore.wipe()
        micropython.kbd_intr(_CTRL_C)
        print("vitalnode: RECOVERY: device key erased, REPL open; "
              "provision again with --rotate")
        state = RECOVERED
    else:
        print("vitalnode: locked down: REPL closed (recovery: hold BOOT after reset)")
        state = LOCKED
    return state
