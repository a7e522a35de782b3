"""MAX30102 pulse oximeter (red + IR PPG, die temperature) over I2C.

    from machine import I2C
    from max30102 import MAX30102
    ppg = MAX30102(I2C(0, scl=22, sda=21))      # raises SensorNotFound
    ppg.configure(sample_rate=100, pulse_width=411, adc_range=4096,
                  led_red_ma=7.0, led_ir_ma=7.0, a_full=17)
    n = ppg.read_fifo()                          # ppg.red[:n], ppg.ir[:n]

Datasheet facts used (MAX30102 rev 1): PART_ID 0x15 at 0xFF; FIFO_CONFIG
0x08 = SMP_AVE[7:5] FIFO_ROLLOVER_EN[4] FIFO_A_FULL[3:0]; MODE_CONFIG
0x09 = SHDN[7] RESET[6] MODE[2:0] (2 = HR: red only, 3 = SpO2: red + IR);
SPO2_CONFIG 0x0A = SPO2_ADC_RGE[6:5] SPO2_SR[4:2] LED_PW[1:0]; LED1_PA
0x0C (red), LED2_PA 0x0D (IR), 0.2 mA per step; die temperature 0x1F
(signed degrees), 0x20 (1/16 degree), TEMP_EN in 0x21. FIFO data is
left-justified 18-bit: bits 17..0 of each 3-byte word whatever the
resolution (the lower bits are zero below 18 bits) - so the value is
masked, never shifted.

Configuration is validated against the datasheet's sample-rate x
pulse-width table (the chip would silently run slower otherwise); invalid
arguments raise ValueError naming the field and the allowed values.
"""
import time

from micropython import const

import maxfifo
from dsp import zeros
from maxfifo import FifoSensor

ADDRESS = const(0x57)
_REG_INT_EN1 = const(0x02)
_REG_MODE = const(0x09)
_REG_SPO2 = const(0x0A)
_REG_LED1_PA = const(0x0C)
_REG_LED2_PA = const(0x0D)
_REG_TEMP_INT = const(0x1F)
_REG_TEMP_CONFIG = const(0x21)
_REG_INT_STATUS2 = const(0x01)

_SHDN = const(0x80)
_RESET = const(0x40)
_MODE_HR = const(2)
_MODE_SPO2 = const(3)
_A_FULL_EN = const(0x80)
_MASK18 = const(0x3FFFF)

SAMPLE_RATES = (50, 100, 200, 400, 800, 1000, 1600, 3200)
PULSE_WIDTHS = (69, 118, 215, 411)  # us; ADC resolution 15..18 bits
ADC_RANGES = (2048, 4096, 8192, 16384)  # full scale, nA
LED_STEP_MA = 0.2
# Highest allowed sample rate per pulse width (datasheet tables "SpO2 mode"
# and "HR mode" allowed settings): two LEDs share each sample period in
# SpO2 mode, so the long pulses stop earlier.
MAX_RATE_SPO2 = (1600, 1000, 800, 400)
MAX_RATE_HR = (3200, 1600, 1000, 800)


class MAX30102(FifoSensor):
    PART_ID = 0x15
    NAME = "MAX30102"
    CTRL_REG = _REG_MODE
    RESET_BIT = _RESET
    SHDN_BIT = _SHDN

    def __init__(self, i2c, addr=ADDRESS, retries=3):
        self.red = zeros(32)
        self.ir = zeros(32)
        self.ecg = None
        self.mode = "spo2"
        self.led_codes = bytearray(2)  # red, IR
        super().__init__(i2c, addr, 2, retries)
        self.config = None

    def configure(self, sample_rate=100, averaging=1, adc_range=4096, pulse_width=411,
                  led_red_ma=7.0, led_ir_ma=7.0, a_full=17, mode="spo2", rollover=False):
        """Apply a complete configuration; nothing is written unless every
        argument is valid. Clears the FIFO. Returns the validated settings."""
        sr = maxfifo.choice("sample_rate", sample_rate, SAMPLE_RATES)
        pw = maxfifo.choice("pulse_width", pulse_width, PULSE_WIDTHS)
        rg = maxfifo.choice("adc_range", adc_range, ADC_RANGES)
        av = maxfifo.choice("averaging", averaging, maxfifo.AVERAGING)
        if mode not in ("spo2", "hr"):
            raise ValueError("mode=%r is not one of ('spo2', 'hr')" % (mode,))
        top = (MAX_RATE_SPO2 if mode == "spo2" else MAX_RATE_HR)[pw]
        if sample_rate > top:
            raise ValueError("sample_rate=%d with pulse_width=%d us in %s mode: the datasheet allows at most %d sps"
                             % (sample_rate, pulse_width, mode, top))
        red = maxfifo.led_code("led_red_ma", led_red_ma, LED_STEP_MA)
        ir = maxfifo.led_code("led_ir_ma", led_ir_ma, LED_STEP_MA)
        af = maxfifo.a_full_code(a_full)
        self.write_reg(_REG_MODE, _SHDN)  # quiet while reconfiguring
        self.write_reg(maxfifo.REG_FIFO_CONFIG, (av << 5) | (0x10 if rollover else 0) | af)
        self.write_reg(_REG_SPO2, (rg << 5) | (sr << 2) | pw)
        self.set_led_codes(red, ir if mode == "spo2" else 0)
        self.write_reg(_REG_INT_EN1, _A_FULL_EN)
        self.clear_fifo()
        self.mode = mode
        self._set_slots(2 if mode == "spo2" else 1)
        t = time.ticks_us()  # sampling starts with this write: the first sample one period on
        self.write_reg(_REG_MODE, _MODE_SPO2 if mode == "spo2" else _MODE_HR)
        self.started_us = t
        self.config = {"sample_rate": sample_rate, "averaging": averaging, "adc_range": adc_range,
                       "pulse_width": pulse_width, "led_red_ma": led_red_ma, "led_ir_ma": led_ir_ma,
                       "a_full": a_full, "mode": mode, "rollover": rollover,
                       "channels": ("red", "ir") if mode == "spo2" else ("red",),
                       "period": (1000000 * averaging, sample_rate), "led_step_ma": LED_STEP_MA,
                       "led_codes": (red, ir),
                       "output_rate": sample_rate // averaging if sample_rate % averaging == 0
                       else sample_rate / averaging, "bits": 15 + pw, "full_scale": _MASK18}
        return self.config

    def set_led_codes(self, red, ir):
        """LEDx_PA register codes (0..255, 0.2 mA each) - allocation-free."""
        self.write_reg(_REG_LED1_PA, red)
        self.write_reg(_REG_LED2_PA, ir)
        self.led_codes[0] = red
        self.led_codes[1] = ir

    def temperature(self, polls=10):
        """Die temperature in degrees C (one conversion, ~29 ms)."""
        self.write_reg(_REG_TEMP_CONFIG, 1)
        for _ in range(polls):
            time.sleep_ms(10)
            if not self.read_reg(_REG_TEMP_CONFIG) & 1:
                b = bytearray(2)
                self.read_into(_REG_TEMP_INT, b)
                self.read_reg(_REG_INT_STATUS2)  # clears DIE_TEMP_RDY
                whole = b[0] - 256 if b[0] & 0x80 else b[0]
                return whole + (b[1] & 0x0F) / 16
        raise maxfifo.SensorError("%s at 0x%02x: temperature conversion did not finish" % (self.NAME, self.addr))

    def _decode(self, n):
        b = self._buf
        red = self.red
        if self.nslots == 2:
            ir = self.ir
            i = 0
            for k in range(n):
                red[k] = ((b[i] << 16) | (b[i + 1] << 8) | b[i + 2]) & _MASK18
                ir[k] = ((b[i + 3] << 16) | (b[i + 4] << 8) | b[i + 5]) & _MASK18
                i += 6
        else:
            i = 0
            for k in range(n):
                red[k] = ((b[i] << 16) | (b[i + 1] << 8) | b[i + 2]) & _MASK18
                i += 3
