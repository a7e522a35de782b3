# boot.py - runs first on every reset (and after a soft reset).
# Ctrl-C is disabled before anything else: a locked-down node must not be
# interruptible into the REPL (firmware/lockdown.py decides, and re-enables
# it on an open node). Later: the OTA slot choice (pending/confirm/revert).
import micropython

micropython.kbd_intr(-1)
import machine

_CAUSES = {1: "power-on", 2: "hard reset", 3: "watchdog", 4: "deep-sleep wake", 5: "software reset"}
print("vitalnode boot: reset cause", _CAUSES.get(machine.reset_cause(), machine.reset_cause()))
from firmware import lockdown

lockdown.at_boot()
