# MicroPython script (wasm / unix VM): the node's own work per FIFO sample -
# firmware.sampler's service() (the MAX86150 driver's FIFO read and decode,
# rings, lead/finger checks, LED control) then firmware.detect's service()
# (QRS + rhythm on ECG at 200 sps, pulse + SpO2 on IR/red decimated to 100
# sps, alerts, the LED floor) - on the simulated chip (tools/shims/simmax.py, synthetic
# 72/min ECG and pleth), drained every 85 ms as the power-saving node does.
# Timed with the VM's real clock (`time` is imported before the shims). The
# simulated chip's own Python (the I2C stand-in, making samples, popping FIFO
# bytes) is timed apart, making the same reads with no node behind them, and
# subtracted: on the ESP32 that part is the I2C peripheral and the chip.
# Each is timed in BLOCKS blocks, each block as one interval (the wasm VM's
# ticks_us moves in whole ms: per-drain intervals of 0.2-0.8 ms were mostly
# rounding), the clock's advance_to in both so that it cancels; the fastest
# block counts (the host's other load only ever slows a block down).
import json

import simboard
import simmax

DRAIN_US = 85000  # FIFO almost full at 17 samples, 200 sps
WARM = 120  # drains before timing: learning periods, first beats
READS = 700  # ~60 s of signal
BLOCKS = 7


def node():
    from firmware import sensor
    from firmware.detect import Detect
    simboard.new_board()
    simmax.attach_spec({})
    smp, _ = sensor.start()
    return smp, Detect(smp, led_floor=True)  # as the node runs it (config power.led_floor)


def run_node():
    """Fastest block's us per sample, samples timed, the detector."""
    smp, det = node()
    clk = simboard.board.clock
    for _ in range(WARM):
        clk.advance_to(clk.now_us + DRAIN_US)
        smp.service()
        det.service()
    best = None
    n_all = 0
    for _ in range(BLOCKS):
        n0 = smp.times.head
        t0 = time.ticks_us()
        for _ in range(READS // BLOCKS):
            clk.advance_to(clk.now_us + DRAIN_US)
            smp.service()
            det.service()
        us = time.ticks_diff(time.ticks_us(), t0)
        n = smp.times.head - n0
        n_all += n
        if best is None or us / n < best:
            best = us / n
    return best, n_all, det


def run_shim():
    """The same drains with only the I2C reads the driver makes."""
    import machine
    simboard.new_board()
    chip = simmax.attach_spec({})
    from max86150 import MAX86150
    i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21))
    s = MAX86150(i2c)
    s.configure(sample_rate=200, ecg_rate=200)
    st = bytearray(7)
    buf = bytearray(32 * 9)
    mv = memoryview(buf)
    clk = simboard.board.clock
    best = None
    for b in range(BLOCKS + 1):
        n_all = 0
        t0 = time.ticks_us()
        for _ in range(WARM if b == 0 else READS // BLOCKS):
            clk.advance_to(clk.now_us + DRAIN_US)
            i2c.readfrom_mem_into(chip.ADDRESS, 0, st)
            n = ((st[4] & 31) - (st[6] & 31)) & 31
            if n:
                i2c.readfrom_mem_into(chip.ADDRESS, 7, mv[:n * 9])
            n_all += n
        us = time.ticks_diff(time.ticks_us(), t0)
        if b and (best is None or us / n_all < best):  # block 0: the warm-up
            best = us / n_all
    return best


node_us, samples, det = run_node()
shim_us = run_shim()
print("BENCH " + json.dumps({"node_us_per_sample": node_us, "shim_us_per_sample": shim_us,
                             "samples": samples, "us_per_sample": node_us - shim_us,
                             "beats": det.rhythm.count}))
