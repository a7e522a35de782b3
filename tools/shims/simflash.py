"""The simulated node's SPI flash: NOR flash in a host file, laid out by the
ESP32_GENERIC-OTA partition table, with power loss and EIO injected at the
block device, and real LittleFS 2 on its `vfs` partition.

    chip = FlashChip("flash.bin", faults)          # 4 MiB, erased = 0xFF
    part = Region(chip, VFS_OFFSET, VFS_SIZE)      # what esp32.Partition wraps
    fs = filesystem(part)                          # LittleFS 2, mounted

Layout (ports/esp32/partitions-4MiB-ota.csv of MicroPython 1.27.0):
nvs 0x9000 16K, otadata 0xd000 8K, ota_0 0x10000 1.5M, ota_1 0x190000 1.5M,
vfs 0x310000 960K. NVS and otadata are modelled by the esp32 shim and
simboard.OtaData (their on-flash formats are ESP-IDF's); the app slots and
the filesystem live in the file.

The filesystem is the one the chip runs: on the MicroPython unix port,
MicroPython's own `vfs.VfsLfs2` on the `vfs` Region (as the ESP32's
_boot.py mounts `esp32.Partition` "vfs"), mounted where the caller says;
on CPython, littlefs-python (the same LittleFS 2.11, disk version 2.1) on
the same Region, behind the os-like calls firmware/storage uses. Images are
interchangeable: the host builds a node's flash with littlefs-python and
the node mounts it.

Faults, counted per flash operation (every sector erase and every program,
of the filesystem, the app slots and NVS commits alike): `faults.arm(k)`
cuts power at the k-th operation from now - a program is torn (its first
half reaches the flash), an erase leaves its sector half erased - and the
flash stays dead (PowerLoss on every operation) until power_on(); mode
"eio" makes that operation fail with OSError(EIO) instead (nothing
written). LittleFS copes with torn writes by design; the tests sweep k.
Time: with `chip.clock` set (a simulated board sets it), every erase and
program takes its time from tools/shims/timing.py, with the ISRs that are
not IRAM-safe held back meanwhile (vclock.flash_op), as on the ESP32.
Guarantees: erased bytes read 0xFF, programming only clears bits (NOR);
the file is the whole truth (a reset keeps it; a new FlashChip on a new
path starts erased). Non-guarantees: no wear, no bit errors.
"""
import sys

_MP = sys.implementation.name == "micropython"
_EIO = 5
SECTOR = 4096
FLASH_SIZE = 0x400000
# name: (type, subtype, offset, size) - partitions-4MiB-ota.csv
PARTITIONS = (
    ("nvs", 1, 0x02, 0x9000, 0x4000),
    ("otadata", 1, 0x00, 0xD000, 0x2000),
    ("ota_0", 0, 0x10, 0x10000, 0x180000),
    ("ota_1", 0, 0x11, 0x190000, 0x180000),
    ("vfs", 1, 0x81, 0x310000, 0xF0000),
)
VFS_OFFSET = 0x310000
VFS_SIZE = 0xF0000
# VfsLfs2's defaults (extmod/vfs_lfs.c), shared with the host's image builder
LFS_READ = 32
LFS_PROG = 32
LFS_LOOKAHEAD = 32
LFS_BLOCK_CYCLES = 100


class PowerLoss(BaseException):
    """Power was cut during a flash operation (the node stops here)."""


class FlashFaults:
    """One counter for every flash-mutating operation of a node."""

    def __init__(self):
        self.ops = 0
        self._arm_at = 0
        self._mode = None
        self.dead = False
        self.trace = None  # set to a list to record op kinds

    def arm(self, k, mode="powerloss"):
        """Fail the k-th flash op from now: 'powerloss' or 'eio'."""
        self._arm_at = self.ops + k
        self._mode = mode

    def disarm(self):
        self._arm_at = 0

    def next(self, kind):
        """Count one operation; None to go ahead, else "powerloss" (the
        flash is dead from now on) or "eio"."""
        if self.dead:
            return "powerloss"
        self.ops += 1
        if self.trace is not None:
            self.trace.append(kind)
        if self._arm_at and self.ops == self._arm_at:
            self._arm_at = 0
            if self._mode == "eio":
                return "eio"
            self.dead = True
            return "powerloss"
        return None

    def op(self, kind):
        """An operation that either happens whole or not at all (an NVS
        commit, an otadata write): raises as the fault says."""
        f = self.next(kind)
        if f == "eio":
            raise OSError(_EIO)
        if f is not None:
            raise PowerLoss(kind)

    def power_on(self):
        self.dead = False
        self._arm_at = 0


class FlashChip:
    """The whole SPI flash in a host file; `erased` tracks which sectors
    hold only 0xFF, so a new chip or an erase costs no file I/O.
    existing=True: the file is a whole flash image (every byte of `size`
    written, as new_image() makes it), kept as it is."""

    def __init__(self, path, faults=None, size=FLASH_SIZE, existing=False):
        self.path = path
        self.faults = faults if faults is not None else FlashFaults()
        self.size = size
        self.clock = None  # a vclock.Clock: erases and programs then take their time
        self.erased = bytearray((b"\x00" if existing else b"\x01") * (size // SECTOR))
        self._ff = bytearray(b"\xff" * SECTOR)
        self._oldmv = memoryview(bytearray(SECTOR))
        # a fresh chip: whatever the file held before is not flash
        self._f = open(path, "r+b" if existing else "w+b")

    def close(self):
        self._f.close()

    def _check(self, addr, n):
        if addr < 0 or addr + n > self.size:
            raise OSError(22)

    def read(self, addr, buf):
        n = len(buf)
        self._check(addr, n)
        if n == 0:
            return
        s0 = addr // SECTOR
        s1 = (addr + n - 1) // SECTOR
        if s0 == s1 and self.erased[s0]:
            for i in range(n):
                buf[i] = 0xFF
            return
        if s0 == s1:
            f = self._f
            f.seek(addr)
            f.readinto(buf)
            return
        mv = memoryview(buf)  # spans sectors (app slot reads): rare
        i = 0
        while i < n:
            a = addr + i
            k = min(n - i, SECTOR - a % SECTOR)
            self.read(a, mv[i:i + k])
            i += k

    def _materialise(self, s):
        if self.erased[s]:
            f = self._f
            f.seek(s * SECTOR)
            f.write(self._ff)
            self.erased[s] = 0

    def program(self, addr, buf, kind="prog"):
        """NOR programming: bits go from 1 to 0 only (the result is the
        old content ANDed with `buf`)."""
        n = len(buf)
        self._check(addr, n)
        fault = self.faults.next(kind)
        if fault == "eio":
            raise OSError(_EIO)
        if fault is not None:
            n = n // 2  # torn: the first half reaches the flash
        elif self.clock is not None:
            import timing
            self.clock.flash_op(timing.flash_prog_us(n), "flash-program")
        i = 0
        mv = memoryview(buf)
        f = self._f
        while i < n:
            a = addr + i
            k = min(n - i, SECTOR - a % SECTOR)
            s = a // SECTOR
            if self.erased[s]:
                self._materialise(s)
                f.seek(a)
                f.write(mv[i:i + k])
            else:
                old = self._oldmv[:k]
                f.seek(a)
                f.readinto(old)
                for j in range(k):
                    old[j] &= buf[i + j]
                f.seek(a)
                f.write(old)
            i += k
        if fault is not None:
            raise PowerLoss(kind)

    def erase(self, sector, kind="erase"):
        if sector < 0 or sector >= len(self.erased):
            raise OSError(22)
        fault = self.faults.next(kind)
        if fault == "eio":
            raise OSError(_EIO)
        if fault is not None:  # half erased: the first half reads 0xFF
            self._materialise(sector)
            f = self._f
            f.seek(sector * SECTOR)
            f.write(memoryview(self._ff)[:SECTOR // 2])
            raise PowerLoss(kind)
        if self.clock is not None:
            import timing
            self.clock.flash_op(timing.P.flash_erase_us, "flash-erase")
        self.erased[sector] = 1

    def sync(self):
        """Push buffered writes to the host file (a host reads it next)."""
        self._f.flush()

    def read_bytes(self, addr, n):
        """Host-side peek (no fault op)."""
        b = bytearray(n)
        self.read(addr, b)
        return bytes(b)


class Region:
    """A partition: the block-device protocol of esp32.Partition and of
    MicroPython's VFS (readblocks / writeblocks / ioctl), on the chip.
    writeblocks without an offset erases the blocks first (as the ESP32
    port's Partition.writeblocks does); with one, it only programs."""

    def __init__(self, chip, offset, size, block_size=SECTOR, kind="part"):
        self.chip = chip
        self.offset = offset
        self.size = size
        self.bs = block_size
        self._prog = kind + "-prog"
        self._erase = kind + "-erase"

    def readblocks(self, block_num, buf, offset=0):
        start = block_num * self.bs + offset
        if start < 0 or start + len(buf) > self.size:
            raise OSError(22)
        self.chip.read(self.offset + start, buf)

    def writeblocks(self, block_num, buf, offset=None):
        start = block_num * self.bs + (offset or 0)
        if start < 0 or start + len(buf) > self.size:
            raise OSError(22)
        if offset is None:
            for k in range(len(buf) // self.bs):
                self.ioctl(6, block_num + k)
        self.chip.program(self.offset + start, buf, self._prog)

    def ioctl(self, cmd, arg):
        if cmd == 4:  # block count
            return self.size // self.bs
        if cmd == 5:  # block size
            return self.bs
        if cmd == 6:  # erase one block
            per = self.bs // SECTOR or 1
            first = (self.offset + arg * self.bs) // SECTOR
            for k in range(per):
                self.chip.erase(first + k, self._erase)
            return 0
        return 0


# --- the filesystem the firmware sees ------------------------------------

def _norm(path):
    parts = []
    for p in path.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


class _Gate:
    """The block device one mount uses. A reset wipes the chip's RAM; here
    the old mount's objects live on, and a file object the garbage
    collector finalises later would close - and write - through the old
    LittleFS state. After the reset the gate is shut: it writes nothing
    and reports an I/O error (as a return code: nothing is raised into
    a finaliser)."""

    def __init__(self, region):
        self.region = region
        self.open = True

    def readblocks(self, block_num, buf, offset=0):
        if not self.open:
            return -_EIO
        return self.region.readblocks(block_num, buf, offset)

    def writeblocks(self, block_num, buf, offset=None):
        if not self.open:
            return -_EIO
        return self.region.writeblocks(block_num, buf, offset)

    def ioctl(self, cmd, arg):
        if not self.open and cmd == 6:
            return -_EIO
        return self.region.ioctl(cmd, arg)


class MountedFS:
    """MicroPython: VfsLfs2 on the region, mounted at `mountpoint` (made
    with mkfs on a blank flash, as the ESP32's inisetup does); the os-like
    calls of firmware/storage with paths relative to the mount point."""

    def __init__(self, region, mountpoint):
        self.region = region
        self.mountpoint = mountpoint.rstrip("/")
        self._pre = self.mountpoint + "/"
        self.vfs = None
        self._mount()

    def _mount(self):
        import vfs
        self._gate = region = _Gate(self.region)
        try:
            fs = vfs.VfsLfs2(region, readsize=LFS_READ, progsize=LFS_PROG,
                             lookahead=LFS_LOOKAHEAD)
        except OSError:
            vfs.VfsLfs2.mkfs(region, readsize=LFS_READ, progsize=LFS_PROG,
                             lookahead=LFS_LOOKAHEAD)
            fs = vfs.VfsLfs2(region, readsize=LFS_READ, progsize=LFS_PROG,
                             lookahead=LFS_LOOKAHEAD)
        self.vfs = fs
        vfs.mount(fs, self.mountpoint or "/")

    def unmount(self):
        import vfs
        if self.vfs is None:
            return
        self._gate.open = False  # RAM is gone: the old mount must not write again
        try:
            vfs.umount(self.vfs)
        except OSError:
            pass
        self.vfs = None

    def remount(self):
        """A reboot: the flash is mounted afresh (files open before are
        orphaned, their unsynced writes lost)."""
        self.unmount()
        self._mount()

    def _p(self, path):
        return self._pre + _norm(path)

    def open(self, path, mode="r"):
        return open(self._p(path), mode)

    def remove(self, path):
        import os
        os.remove(self._p(path))

    def rename(self, old, new):
        import os
        os.rename(self._p(old), self._p(new))

    def stat(self, path):
        import os
        return os.stat(self._p(path))

    def mkdir(self, path):
        import os
        os.mkdir(self._p(path))

    def rmdir(self, path):
        import os
        os.rmdir(self._p(path))

    def ilistdir(self, path=""):
        import os
        return os.ilistdir(self._p(path))

    def listdir(self, path=""):
        import os
        return sorted(os.listdir(self._p(path)))

    def statvfs(self, path=""):
        import os
        return os.statvfs(self._p(path))

    def read_bytes(self, path):
        with open(self._p(path), "rb") as f:
            return f.read()


def filesystem(region, mountpoint="/flash"):
    """The firmware's filesystem on `region`: MountedFS on MicroPython,
    LfsFS (littlefs-python) on CPython."""
    if _MP:
        return MountedFS(region, mountpoint)
    from simlfs import LfsFS
    return LfsFS(region)
