# boot.py - runs first on every reset (and after a soft reset).
# Today: report why we booted. Later: recovery escape hatch and OTA slot
# choice (pending / confirm / revert) live here, before main.py runs.
import machine

_CAUSES = {1: "power-on", 2: "hard reset", 3: "watchdog", 4: "deep-sleep wake", 5: "software reset"}
print("vitalnode boot: reset cause", _CAUSES.get(machine.reset_cause(), machine.reset_cause()))
