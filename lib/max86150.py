"""MAX86150 PPG (IR + red) and single-lead ECG front end over I2C.

    from machine import I2C
    from max86150 import MAX86150
    s = MAX86150(I2C(0, scl=22, sda=21))        # raises SensorNotFound
    s.configure(sample_rate=200, ecg_rate=200)  # FIFO slots: IR, red, ECG
    n = s.read_fifo()                            # s.ir[:n], s.red[:n], s.ecg[:n]

Datasheet facts used (MAX86150 rev 2): PART_ID 0x1E at 0xFF; FIFO_CONFIG
0x08 = A_FULL_CLR[6] A_FULL_TYPE[5] FIFO_ROLLS_ON_FULL[4] FIFO_A_FULL[3:0];
FIFO data control 0x09 (FD2[7:4] FD1[3:0]) and 0x0A (FD4, FD3) with element
codes 1 = PPG LED1 (IR), 2 = PPG LED2 (red), 9 = ECG; SYS_CONTROL 0x0D =
FIFO_EN[2] SHDN[1] RESET[0]; PPG_CONFIG1 0x0E = PPG_ADC_RGE[7:6]
PPG_SR[5:2] PPG_LED_PW[1:0]; PPG_CONFIG2 0x0F = SMP_AVE[2:0]; LED1_PA 0x11
(IR), LED2_PA 0x12 (red), LED_RANGE 0x14 (50 or 100 mA: 0.2 or 0.4 mA per
step); ECG_CONFIG1 0x3C = ECG_ADC_CLK[2] ECG_ADC_OSR[1:0]; ECG_CONFIG3 0x3E
= PGA_ECG_GAIN[3:2] IA_GAIN[1:0]. PPG samples are 19-bit unsigned, ECG
samples 18-bit two's complement (sign-extended here). The chip has no die
temperature sensor.

When PPG and ECG share the FIFO each FIFO sample is one instant, so the
PPG output rate (sample_rate / averaging) must equal ecg_rate; mismatches,
and sample-rate x pulse-width pairs the LED timing cannot meet, raise
ValueError instead of letting the chip silently pick another rate.
"""
import time

from micropython import const

import maxfifo
from dsp import zeros
from maxfifo import FifoSensor

ADDRESS = const(0x5E)
_REG_INT_EN1 = const(0x02)
_REG_FD1 = const(0x09)
_REG_FD2 = const(0x0A)
_REG_SYS = const(0x0D)
_REG_PPG1 = const(0x0E)
_REG_PPG2 = const(0x0F)
_REG_LED1_PA = const(0x11)
_REG_LED2_PA = const(0x12)
_REG_LED_RANGE = const(0x14)
_REG_ECG1 = const(0x3C)
_REG_ECG3 = const(0x3E)

_FIFO_EN = const(0x04)
_SHDN = const(0x02)
_RESET = const(0x01)
_A_FULL_EN = const(0x80)
_MASK19 = const(0x7FFFF)
_MASK18 = const(0x3FFFF)
_SIGN18 = const(0x20000)

# FIFO element codes for the FD1..FD4 slots
ELEMENT = {"ir": 1, "red": 2, "ecg": 9}
_ECG = const(9)

# PPG_SR codes 0..10 (one LED pulse per sample) and 11..15 (two pulses)
SAMPLE_RATES = (10, 20, 50, 84, 100, 200, 400, 800, 1000, 1600, 3200)
PULSE_WIDTHS = (50, 100, 200, 400)  # us
ADC_RANGES = (4096, 8192, 16384, 32768)  # full scale, nA
# Highest one-pulse sample rate each pulse width leaves room for with two
# LEDs per sample (our reading of the datasheet's PPG timing table).
MAX_RATE = (3200, 1600, 1000, 400)
# ECG_ADC_CLK/OSR code -> rate: 0..3 with CLK=0, 4 = CLK=1 OSR=0
ECG_RATES = (1600, 800, 400, 200, 3200)
IA_GAINS = (5, 9.5, 20, 50)  # V/V, IA_GAIN code 0..3
PGA_GAINS = (1, 2, 4, 8)  # V/V, PGA_ECG_GAIN code 0..3
# ECG input-referred LSB with total gain G: ECG_LSB_UV_X_GAIN / G microvolts
ECG_LSB_UV_X_GAIN = 12.247


def ecg_lsb_uv(ia_gain, pga_gain):
    return ECG_LSB_UV_X_GAIN / (ia_gain * pga_gain)


class MAX86150(FifoSensor):
    PART_ID = 0x1E
    NAME = "MAX86150"
    CTRL_REG = _REG_SYS
    RESET_BIT = _RESET
    SHDN_BIT = _SHDN

    def __init__(self, i2c, addr=ADDRESS, retries=3):
        self.ir = zeros(32)
        self.red = zeros(32)
        self.ecg = zeros(32)
        self._outs = [self.ir, self.red, self.ecg]
        self._kinds = bytearray((1, 2, 9))
        self.led_codes = bytearray(2)  # red, IR
        super().__init__(i2c, addr, 3, retries)
        self.config = None

    def configure(self, sample_rate=200, averaging=1, adc_range=16384, pulse_width=100,
                  led_ir_ma=10.0, led_red_ma=10.0, led_range_ma=50, a_full=17,
                  ecg_rate=200, ecg_ia_gain=9.5, ecg_pga_gain=8,
                  channels=("ir", "red", "ecg"), rollover=False):
        """Apply a complete configuration; nothing is written unless every
        argument is valid. Clears the FIFO. Returns the validated settings."""
        if not 1 <= len(channels) <= 3:
            raise ValueError("channels=%r: one to three of 'ir', 'red', 'ecg'" % (channels,))
        kinds = []
        for c in channels:
            if c not in ELEMENT or ELEMENT[c] in kinds:
                raise ValueError("channels=%r: each of 'ir', 'red', 'ecg' at most once" % (channels,))
            kinds.append(ELEMENT[c])
        sr = maxfifo.choice("sample_rate", sample_rate, SAMPLE_RATES)
        pw = maxfifo.choice("pulse_width", pulse_width, PULSE_WIDTHS)
        rg = maxfifo.choice("adc_range", adc_range, ADC_RANGES)
        av = maxfifo.choice("averaging", averaging, maxfifo.AVERAGING)
        if sample_rate > MAX_RATE[pw]:
            raise ValueError("sample_rate=%d with pulse_width=%d us: at most %d sps"
                             % (sample_rate, pulse_width, MAX_RATE[pw]))
        er = maxfifo.choice("ecg_rate", ecg_rate, ECG_RATES)
        ia = maxfifo.choice("ecg_ia_gain", ecg_ia_gain, IA_GAINS)
        pga = maxfifo.choice("ecg_pga_gain", ecg_pga_gain, PGA_GAINS)
        lr = maxfifo.choice("led_range_ma", led_range_ma, (50, 100))
        step = 0.2 * (lr + 1)
        ir = maxfifo.led_code("led_ir_ma", led_ir_ma, step)
        red = maxfifo.led_code("led_red_ma", led_red_ma, step)
        af = maxfifo.a_full_code(a_full)
        ppg_in = len(kinds) > kinds.count(_ECG)
        if _ECG in kinds and ppg_in and sample_rate != ecg_rate * averaging:
            raise ValueError("sample_rate=%d / averaging=%d must equal ecg_rate=%d when PPG and ECG share the FIFO"
                             % (sample_rate, averaging, ecg_rate))
        self.write_reg(_REG_SYS, _SHDN)  # FIFO off while reconfiguring
        self.write_reg(maxfifo.REG_FIFO_CONFIG, 0x40 | (0x10 if rollover else 0) | af)
        fd = kinds + [0] * (4 - len(kinds))
        self.write_reg(_REG_FD1, (fd[1] << 4) | fd[0])
        self.write_reg(_REG_FD2, (fd[3] << 4) | fd[2])
        self.write_reg(_REG_PPG1, (rg << 6) | (sr << 2) | pw)
        self.write_reg(_REG_PPG2, av)
        self.write_reg(_REG_LED_RANGE, (lr << 2) | lr)
        self.set_led_codes(red, ir)
        self.write_reg(_REG_ECG1, 4 if er == 4 else er)
        self.write_reg(_REG_ECG3, (pga << 2) | ia)
        self.write_reg(_REG_INT_EN1, _A_FULL_EN)
        self.clear_fifo()
        self._kinds = bytearray(kinds)
        self._outs = [self.ir if k == 1 else self.red if k == 2 else self.ecg for k in kinds]
        self._set_slots(len(kinds))
        self.led_step_ma = step
        t = time.ticks_us()  # sampling starts with this write: the first sample one period on
        self.write_reg(_REG_SYS, _FIFO_EN)
        self.started_us = t
        self.config = {"sample_rate": sample_rate, "averaging": averaging, "adc_range": adc_range,
                       "pulse_width": pulse_width, "led_ir_ma": led_ir_ma, "led_red_ma": led_red_ma,
                       "led_range_ma": led_range_ma, "a_full": a_full, "ecg_rate": ecg_rate,
                       "ecg_ia_gain": ecg_ia_gain, "ecg_pga_gain": ecg_pga_gain,
                       "channels": tuple(channels), "rollover": rollover,
                       "period": (1000000 * averaging, sample_rate) if ppg_in else (1000000, ecg_rate),
                       "led_step_ma": step, "led_codes": (red, ir),
                       "output_rate": ecg_rate if not ppg_in else sample_rate // averaging,
                       "ecg_lsb_uv": ecg_lsb_uv(ecg_ia_gain, ecg_pga_gain), "full_scale": _MASK19}
        return self.config

    def set_led_codes(self, red, ir):
        """LEDx_PA register codes (0..255, led_step_ma each) - allocation-free."""
        self.write_reg(_REG_LED2_PA, red)
        self.write_reg(_REG_LED1_PA, ir)
        self.led_codes[0] = red
        self.led_codes[1] = ir

    def temperature(self):
        raise maxfifo.SensorError("MAX86150 has no die temperature sensor")

    def _decode(self, n):
        # slot by slot: one test of the element kind per slot, not per sample
        b = self._buf
        kinds = self._kinds
        outs = self._outs
        ns = self.nslots
        step = 3 * ns
        for j in range(ns):
            out = outs[j]
            i = 3 * j
            mask = _MASK19  # PPG: 19-bit unsigned
            sign = 0
            if kinds[j] == _ECG:  # 18-bit two's complement, sign-extended
                mask = _MASK18
                sign = _SIGN18
            for k in range(n):
                out[k] = ((((b[i] << 16) | (b[i + 1] << 8) | b[i + 2]) & mask) ^ sign) - sign
                i += step
