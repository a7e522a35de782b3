"""Frame sequence numbers that survive reboots and power loss, without an
NVS write per frame; and the boot number that orders frames without a clock.

    seq = SeqNo(esp32.NVS("vn_tel"))   # at boot: boot number += 1
    n = seq.take()                     # 0, 1, 2, ... across reboots

The NVS holds a high-water mark `hw`: every number below it may have been
used. At boot the node starts at `hw` and commits hw + BLOCK before using
any number; when it reaches the mark it commits the next block. So one NVS
write per BLOCK frames (flash wear), and a reboot skips at most BLOCK
numbers (a gap the gateway accepts).
Guarantee: take() never returns a number it returned before, across any
reset or power loss (the mark is committed before a number under it is
handed out). Non-guarantee: numbers are not gap-free.
"""
from micropython import const

BLOCK = const(64)


def _get(nvs, key):
    try:
        return nvs.get_i32(key)
    except OSError:
        return 0


class SeqNo:
    def __init__(self, nvs):
        self._nvs = nvs
        self.next = _get(nvs, "hw")
        self.boot = _get(nvs, "boot") + 1
        self._limit = self.next + BLOCK
        nvs.set_i32("boot", self.boot)
        nvs.set_i32("hw", self._limit)
        nvs.commit()

    def take(self):
        n = self.next
        if n >= self._limit:
            self._limit = n + BLOCK
            self._nvs.set_i32("hw", self._limit)
            self._nvs.commit()
        self.next = n + 1
        return n
