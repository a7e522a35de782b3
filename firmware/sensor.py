"""Sensor room: find the optical/ECG front end on the board's I2C bus,
configure it and hand back a running Sampler.

Wiring (README "Wiring"): I2C0 with SCL on GPIO22, SDA on GPIO21, 400 kHz;
the chip's open-drain INT goes to GPIO4, but the firmware does not use it:
the pump's timer drains the FIFO (firmware/pump.py). A MAX86150 (0x5E) is
tried first, then a MAX30102 (0x57).

Guarantee: start() never raises for hardware trouble; it returns
(None, reason) and the application retries later, so a missing or wrong
sensor is a reported state, not a crash loop.
"""
from micropython import const

I2C_ID = const(0)
SCL = const(22)
SDA = const(21)
FREQ = const(400000)
SAMPLE_RATE = const(200)
# 0.64 s of samples (4 rings of 512 bytes): detection runs in the same
# timer callback that fills the rings (firmware/pump.py), right after the
# drain, so they only ever hold one drain - at most two FIFO bursts, 64
# samples, or 96 after a wait the FIFO overflowed in; the rest is margin
RING_LEN = const(128)


def start():
    import maxfifo
    from machine import I2C, Pin

    from firmware.sampler import Sampler
    i2c = I2C(I2C_ID, scl=Pin(SCL), sda=Pin(SDA), freq=FREQ)
    reasons = []
    for name in ("max86150", "max30102"):
        try:
            if name == "max86150":
                from max86150 import MAX86150
                s = MAX86150(i2c)
                s.configure(sample_rate=SAMPLE_RATE, ecg_rate=SAMPLE_RATE, led_ir_ma=30.0, led_red_ma=30.0)
            else:
                from max30102 import MAX30102
                s = MAX30102(i2c)
                s.configure(sample_rate=SAMPLE_RATE, pulse_width=215, adc_range=16384,
                            led_red_ma=30.0, led_ir_ma=30.0)
        except maxfifo.SensorError as e:
            reasons.append(str(e))
            continue
        # no INT pin callback: the pump's timer drains the FIFO, and on the
        # ESP32 each pending-callback point runs one callback, so an INT
        # callback would take a turn a drain needs (firmware/pump.py)
        return Sampler(s, ring_len=RING_LEN, bus=(I2C_ID, SCL, SDA, FREQ)), s.NAME
    return None, "; ".join(reasons)
