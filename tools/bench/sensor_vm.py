# MicroPython script (wasm / unix VM): cost of one MAX86150 FIFO read of 32
# samples x 3 channels. Timed with the VM's real clock (`time` is imported
# before the shims are on the path). The I2C stand-in returns at once, so
# the time is the driver's own work: status burst bookkeeping, loss
# accounting and decoding 96 words - what runs in Python on the ESP32,
# where the transfer itself is done by the I2C peripheral.
import gc
import json

import simboard
import machine
from max86150 import MAX86150

READS = 400


class FullFifo:
    """32 unread samples, no overflow; FIFO bytes left in place."""

    def __init__(self):
        self.regs = bytearray(256)
        self.regs[0xFF] = 0x1E
        self.filled = False

    def read_into(self, reg, buf):
        if reg == 0:
            buf[0] = 0x80  # A_FULL
            buf[4] = 5  # WR_PTR == RD_PTR: full
            buf[5] = 0
            buf[6] = 5
        elif reg != 7:
            buf[0] = self.regs[reg]
        elif not self.filled:
            for i in range(len(buf)):
                buf[i] = (i * 37) & 0xFF
            self.filled = True

    def write(self, reg, data):
        self.regs[reg] = data[0]


simboard.board.i2c(0, 22, 21).attach(0x5E, FullFifo())
s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
s.configure()
s.read_fifo()  # warm up
assert s.read_fifo() == 32



def reads(n):
    for _ in range(n):
        s.read_fifo()


def heap_per_read(n):
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    reads(n)
    a1 = gc.mem_alloc()
    gc.enable()
    return (a1 - a0) / n  # locals only: a new global would itself allocate


reads(10)
heap = heap_per_read(100)
t0 = time.ticks_us()
reads(READS)
us = time.ticks_diff(time.ticks_us(), t0) / READS
print("BENCH " + json.dumps({"fifo_read_us": us, "fifo_read_heap_bytes": heap, "reads": READS}))
