# boot.py - runs first on every reset. VitalNode's stage 0 is stage0.py
# (compiled: /stage0.mpy, or frozen), so this file stays two lines: the
# port compiles boot.py from source at every boot.
import stage0

stage0.start()
