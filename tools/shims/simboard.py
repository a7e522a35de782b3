"""The simulated ESP32 node behind the machine/esp32/network shims.

One Board per simulated node holds everything that a real board keeps
across calls: pins, I2C buses and the chips on them, NVS, app partitions
and the bootloader's OTA state, flash fault injection, Wi-Fi world, RTC,
watchdog, reset cause. Tests and the simulator build a Board with
`new_board()`, attach simulated devices, then run device code that only
sees `machine`, `esp32`, `network` and `time`.

Resets: machine.reset(), an expired WDT and deepsleep raise NodeReset (a
BaseException, so `except Exception` in firmware cannot swallow it). The
harness catches it, calls `board.reset(cause)` - timers and the WDT stop,
the flash is mounted afresh, the bootloader picks the slot - and boots the
firmware again (NVS keys and the flash are durable: nothing written is lost).
"""
import sys

import powerstate
import simflash
import vclock
from simflash import FlashFaults

# machine.reset_cause() values of the ESP32 port
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

# machine.Pin constants of the ESP32 port (ports/esp32/machine_pin.c;
# ESP-IDF gpio enums, and the port's own pull values)
PIN_IN = 1
PIN_OUT = 3
PIN_OPEN_DRAIN = 7
PULL_UP = 2
PULL_DOWN = 1
IRQ_RISING = 1
IRQ_FALLING = 2


class NodeReset(BaseException):
    """The simulated chip resets; `cause` is a machine.*_RESET value."""

    def __init__(self, cause, why=""):
        super().__init__(cause, why)
        self.cause = cause
        self.why = why


class Asleep(BaseException):
    """The node deep-slept with no wake source and the world has nothing
    left to happen (a harness without an end of run): it sleeps forever."""


reset_hook = None  # the emulated USB device turns resets into VM reboots


def node_reset(cause, why=""):
    """Reset the simulated chip from inside device code (never returns)."""
    if reset_hook is not None:
        reset_hook(cause, why)
    raise NodeReset(cause, why)


class PinState:
    """Electrical state of one GPIO, shared by every machine.Pin on it."""

    def __init__(self, num):
        self.num = num
        self.mode = -1
        self.pull = -1
        self.level = 0
        self.driven = None  # level forced by a simulated device, or None
        self.handler = None
        self.trigger = 0
        self.falling_edges = 0
        self._isr_fn = self._isr  # bound once: an edge allocates nothing

    def value(self):
        m = self.mode
        if m == PIN_OUT or m == PIN_OPEN_DRAIN:  # (no tuple: allocation-free)
            return self.level
        if self.driven is not None:
            return self.driven
        if self.pull == PULL_UP:
            return 1
        if self.pull == PULL_DOWN:
            return 0
        return self.level

    def set_level(self, v):
        old = self.value()
        self.level = 1 if v else 0
        self._edge(old, self.value())

    def drive(self, v):
        """A simulated device drives the line (None releases it)."""
        old = self.value()
        self.driven = None if v is None else (1 if v else 0)
        self._edge(old, self.value())

    def _edge(self, old, new):
        if old == new:
            return
        if new == 0:
            self.falling_edges += 1
        want = IRQ_FALLING if new == 0 else IRQ_RISING
        if self.handler is not None and self.trigger & want:
            board.clock.interrupt(self._isr_fn)

    def _isr(self):
        """The GPIO ISR (machine_pin_isr_handler): schedules handler(pin);
        a full queue loses the edge."""
        if self.handler is not None:
            board.clock.schedule(self.handler, self.pin_obj)

    pin_obj = None
    # a wake from light sleep on ext0 leaves the pad on the RTC mux: its
    # digital input reads 0 until a mode-setting Pin.init (machine.Pin)
    rtc_mux = False


class I2CBus:
    """A simulated I2C bus: devices by 7-bit address, plus fault knobs.

    A device implements read_into(reg, buf) and write(reg, data) for
    register access, and optionally recv_into(buf) / send(data) for plain
    reads/writes. Faults: nack(n) makes the next n transactions NACK
    (OSError ENODEV, as the ESP32 port reports), timeout(n) makes them time
    out (OSError ETIMEDOUT), stick() holds SDA low until 9 SCL pulses are
    clocked on the SCL pin (the standard bus recovery) or the board resets.
    """

    def __init__(self, bus_id, scl=None, sda=None):
        self.bus_id = bus_id
        self.scl = scl
        self.sda = sda
        self.devices = {}
        self.nack_left = 0
        self.timeout_left = 0
        self.stuck = False
        self._stuck_edges = 0
        self.transactions = 0
        self.errors = 0

    def attach(self, addr, device):
        self.devices[addr] = device
        return device

    def detach(self, addr):
        self.devices.pop(addr, None)

    def nack(self, n=1):
        self.nack_left = n

    def timeout(self, n=1):
        self.timeout_left = n

    def stick(self):
        self.stuck = True
        self._stuck_edges = board.pin(self.scl).falling_edges if self.scl is not None else 0

    def device(self, addr):
        """The device answering at addr, or OSError as the ESP32 port raises."""
        self.transactions += 1
        if self.stuck:
            if self.scl is not None and board.pin(self.scl).falling_edges - self._stuck_edges >= 9:
                self.stuck = False
            else:
                self.errors += 1
                raise OSError(116)  # ETIMEDOUT: SDA held low
        if self.timeout_left:
            self.timeout_left -= 1
            self.errors += 1
            raise OSError(116)
        if self.nack_left:
            self.nack_left -= 1
            self.errors += 1
            raise OSError(19)  # ENODEV: address not acknowledged
        dev = self.devices.get(addr)
        if dev is None:
            self.errors += 1
            raise OSError(19)
        return dev


class Wifi:
    """The radio world a node sees: access points, connect delay, faults."""

    def __init__(self):
        self.aps = {}  # ssid -> [key, rssi]
        self.connect_ms = 1500
        self.fail_left = 0
        self.fail_status = 201  # STAT_NO_AP_FOUND
        self.down = False
        self.drops = 0

    def add_ap(self, ssid, key, rssi=-55):
        self.aps[ssid] = [key, rssi]

    def fail_next(self, n, status=201):
        self.fail_left = n
        self.fail_status = status

    def drop_at(self, t_ms):
        """Drop every connected station at virtual time t_ms."""
        board.clock.call_at(t_ms * 1000, self.drop)

    def drop(self):
        self.drops += 1
        for w in board.wlans:
            w._dropped()


class Partition:
    """One entry of the partition table: where it lies on the flash chip,
    and its region (simflash.Region: the block-device protocol)."""

    def __init__(self, chip, type_, subtype, addr, size, label):
        self.type = type_
        self.subtype = subtype
        self.addr = addr
        self.size = size
        self.label = label
        self.region = simflash.Region(chip, addr, size, kind="vfs" if label == "vfs" else "part")

    def info(self):
        return (self.type, self.subtype, self.addr, self.size, self.label, False)


_flash_files = [0]


def _flash_path():
    """A private file for a new board's flash: a temporary folder on
    CPython; on MicroPython the working folder, which the VM launcher
    (tools/vm/launch.py) makes private to the run."""
    _flash_files[0] += 1
    name = "vnflash-%d.bin" % _flash_files[0]
    if sys.implementation.name == "micropython":
        return name
    import atexit
    import os
    import shutil
    import tempfile
    if _flash_files[0] == 1:
        d = tempfile.mkdtemp(prefix="vnflash-")
        _flash_files.append(d)
        atexit.register(shutil.rmtree, d, True)
    return os.path.join(_flash_files[1], name)


class OtaData:
    """The bootloader's otadata: which app slot boots and its state."""

    NEW = 0
    PENDING_VERIFY = 1
    VALID = 2
    INVALID = 3
    ABORTED = 4

    def __init__(self):
        self.boot = "ota_0"
        self.running = "ota_0"
        self.state = {"ota_0": 2, "ota_1": 4}
        self.rollback_enabled = True
        self.rollbacks = 0

    def on_reset(self):
        """What the ESP-IDF bootloader does with rollback enabled."""
        slot = self.boot
        st = self.state.get(slot)
        if st == self.PENDING_VERIFY or st in (self.INVALID, self.ABORTED):
            # booted once without mark_app_valid_cancel_rollback(): revert
            self.state[slot] = self.ABORTED
            other = "ota_1" if slot == "ota_0" else "ota_0"
            self.boot = other
            self.rollbacks += 1
            slot = other
        elif st == self.NEW and self.rollback_enabled:
            self.state[slot] = self.PENDING_VERIFY
        self.running = slot


class Board:
    """flash: the flash image file (default: a fresh private one; an
    existing image with flash_existing=True, e.g. one the host built with
    simlfs.build_image). fs_blocks: a smaller filesystem partition than the
    partition table's (tests of a full flash). mount: where the firmware's
    filesystem is mounted on MicroPython ("/flash" for tests, "/" for a
    simulated node; None: not yet, see mount_fs())."""

    def __init__(self, uid=b"\x24\x0a\xc4\x00\x00\x01", start_us=0, fs_blocks=None,
                 flash=None, flash_existing=False, mount="/flash"):
        self.uid = bytes(uid)
        self.clock = vclock.new_clock(start_us)
        # the chip's GPIOs and I2C controllers exist before the firmware
        # touches them: made here, their state is the harness's (on the chip
        # it is silicon and C, not the node's heap)
        self.pins = {n: PinState(n) for n in range(40)}
        self.i2c_buses = {n: I2CBus(n) for n in range(2)}
        self.faults = FlashFaults()
        self.flash = simflash.FlashChip(flash or _flash_path(), self.faults,
                                        existing=flash_existing)
        self.nvs = {}  # namespace -> {key: (kind, value)}: on flash (every write is durable)
        self.partitions = []
        for label, type_, subtype, addr, size in simflash.PARTITIONS:
            if label in ("nvs", "otadata"):
                continue  # NVS and otadata: modelled apart (esp32 shim, OtaData)
            if label == "vfs" and fs_blocks:
                size = fs_blocks * simflash.SECTOR
            self.partitions.append(Partition(self.flash, type_, subtype, addr, size, label))
        self.fs = None
        if mount:
            self.mount_fs(mount)  # formatting a blank flash: before power-on, timeless
        self.flash.clock = self.clock  # from now on erases and programs take their time
        self.otadata = OtaData()
        self.wifi = Wifi()
        self.wlans = []
        self.reset_cause = PWRON_RESET
        self.boots = 1
        self.wdt = None
        self.wdt_resets = 0
        self.timers = []
        self.timer_latency_max_us = {}  # timer id: the longest tick -> callback wait (machine.Timer)
        self.nvs_writes = 0
        self.freq = 160000000
        # time per power state (tools/shims/powerstate.py): the harness's, as the clock
        self.power = powerstate.Meter(self.clock, self.freq // 1000000)
        self.rtc_base = None  # (virtual us, seconds since 2000) when set
        self.rtc_mem = b""
        self.ext0 = None  # esp32.wake_on_ext0: (gpio, level) that wakes a light sleep
        self.wakes = 0  # light sleeps ended (by the pin or the timer)
        self.on_nvs_commit = None  # persistence hook (emulated device)
        self.battery = None  # the cell behind the ADC (tools/shims/simbattery.py), if any
        self.adcs = {}  # GPIO -> its machine.ADC object (the port's are static)

    # -- persistence (emulated device keeps its flash across restarts) ----
    def snapshot(self):
        """JSON-ready state that a power cycle keeps: NVS, OTA data, uid."""
        import binascii
        nvs = {}
        for ns, keys in self.nvs.items():
            nvs[ns] = {k: [v[0], v[1] if v[0] == "i32" else binascii.hexlify(v[1]).decode()]
                       for k, v in keys.items()}
        o = self.otadata
        return {"uid": binascii.hexlify(self.uid).decode(), "nvs": nvs,
                "otadata": {"boot": o.boot, "running": o.running, "state": o.state,
                            "rollbacks": o.rollbacks}}

    def restore(self, snap):
        import binascii
        self.uid = binascii.unhexlify(snap["uid"])
        self.nvs = {}
        for ns, keys in snap.get("nvs", {}).items():
            self.nvs[ns] = {k: (v[0], v[1] if v[0] == "i32" else binascii.unhexlify(v[1]))
                            for k, v in keys.items()}
        o = snap.get("otadata")
        if o:
            self.otadata.boot = o["boot"]
            self.otadata.running = o["running"]
            self.otadata.state = o["state"]
            self.otadata.rollbacks = o["rollbacks"]

    def mount_fs(self, mountpoint="/flash"):
        """The firmware's filesystem: LittleFS 2 on the vfs partition
        (simflash.filesystem), mounted at `mountpoint` on MicroPython."""
        if sys.platform == "webassembly":  # the emulated USB board's VM has no LittleFS
            from flashfs import FlashFS
            self.fs = FlashFS(self.faults, blocks=self.partition("vfs").size // simflash.SECTOR)
        else:
            self.fs = simflash.filesystem(self.partition("vfs").region, mountpoint)
        return self.fs

    def release(self):
        """This board is done with (a test's next board replaces it)."""
        if self.fs is not None:
            self.fs.unmount()
        self.flash.close()

    # -- hardware lookups -------------------------------------------------
    def pin(self, num):
        p = self.pins.get(num)
        if p is None:
            p = self.pins[num] = PinState(num)
        return p

    def i2c(self, bus_id, scl=None, sda=None):
        b = self.i2c_buses.get(bus_id)
        if b is None:
            b = self.i2c_buses[bus_id] = I2CBus(bus_id, scl, sda)
        if scl is not None:
            b.scl = scl
        if sda is not None:
            b.sda = sda
        return b

    def partition(self, label):
        for p in self.partitions:
            if p.label == label:
                return p
        return None

    # -- RTC --------------------------------------------------------------
    def set_rtc_seconds(self, s2000):
        self.rtc_base = (self.clock.now_us, s2000)

    def rtc_seconds(self):
        if self.rtc_base is None:  # an unset ESP32 RTC starts at 2000-01-01
            return self.clock.now_us // 1000000
        return self.rtc_base[1] + (self.clock.now_us - self.rtc_base[0]) // 1000000

    # -- reset ------------------------------------------------------------
    def reset(self, cause):
        """Everything a chip reset does to the node's state
        (ports/esp32: main.c soft reset, modmachine.c, machine_rtc.c,
        machine_wdt.c; docs/shims.md):
        - RAM is gone: timers stop, the scheduler's queue empties, the
          radio is off, the flash is mounted afresh;
        - a soft reset (Ctrl-D, machine.soft_reset) keeps the watchdog
          running (the port never stops it) and makes reset_cause()
          SOFT_RESET; any other reset stops it;
        - RTC memory (RTC_NOINIT) survives every reset but power-on; the
          RTC time too (power_cycle() clears both);
        - every reset but a soft one restarts the chip through the ESP-IDF
          bootloader (otadata: the boot partition, rollback); a soft reset
          only restarts MicroPython (ports/esp32/main.c soft_reset loop);
        - the CPU clock is back at 160 MHz but after a soft reset, and the
          power meter (powerstate) sees the radio off and the CPU awake."""
        self.reset_cause = cause
        self.boots += 1
        if cause != SOFT_RESET:
            if self.wdt is not None:
                self.clock.cancel(self.wdt[0])
            self.wdt = None
        self._halt()
        self.ext0 = None  # machine_rtc_config lives in RAM (ports/esp32/machine_rtc.c)
        if cause != SOFT_RESET:  # the chip boots at the IDF default (160 MHz) again
            self.freq = 160000000
            self.clock.set_cpu_mhz(160)
        self.power.cpu_awake(self.freq // 1000000)  # booting (out of deep sleep too)
        for b in self.i2c_buses.values():
            b.stuck = False
        if self.fs is not None:
            self.fs.remount()  # the boot mounts the flash afresh (open files are gone)
        if cause == PWRON_RESET:
            self.rtc_mem = b""
        if cause == WDT_RESET:
            self.wdt_resets += 1
        if cause != SOFT_RESET:
            self.otadata.on_reset()

    def _halt(self):
        """What stops with the CPU, at a reset or a deep sleep: the
        scheduler's queue, every timer, the radio."""
        self.clock.clear_python()
        for t in self.timers:
            t.deinit()
        self.timers = []
        for w in self.wlans:
            w._power_off()
        self.wlans = []
        self.power.radio(powerstate.R_OFF)

    def sleep(self):
        """machine.deepsleep() with no wake source: RAM keeps nothing that
        runs - timers, watchdog (ESP-IDF's task watchdog does not run in
        deep sleep), the scheduler's queue and the radio stop - and the
        world's events go on (the end of the run, a power cut, which boots
        the node again). Never returns; Asleep if nothing is left to happen."""
        if self.wdt is not None:
            self.clock.cancel(self.wdt[0])
            self.wdt = None
        self._halt()
        clk = self.clock
        while clk._events:
            clk.advance_to(clk._events[0][0])
        raise Asleep()

    def power_cycle(self):
        """Power removed and restored (also ends an injected power loss)."""
        self.faults.power_on()
        self.rtc_base = None
        self.reset(PWRON_RESET)


board = None


def new_board(**kw):
    """Start a fresh simulated node and make it the current one (the
    previous board's filesystem is unmounted and its flash file closed)."""
    global board
    if board is not None:
        board.release()
    board = Board(**kw)
    return board


new_board()
