"""`esp32` for simulated nodes: NVS and Partition with ESP-IDF semantics.

NVS: each set_*/erase_key reaches flash at once, on its own (one flash
op: power loss at a key leaves that key old or new, and every key before
it written); commit() adds nothing, as in ESP-IDF. A missing key, a type
mismatch or a too-small buffer raise OSError(-ESP_ERR_..., name) as the
port's check_esp_err does. Keys and namespaces are at most 15 chars.

Partition: a window on the simulated flash chip (simflash.Region: erased
bytes read 0xFF, every erase and program a flash op for power-loss
injection; the `vfs` partition is the block device LittleFS runs on), the
bootloader's OTA state machine in
simboard.OtaData (NEW -> PENDING_VERIFY on first boot -> VALID on
mark_app_valid_cancel_rollback, else reverted at the next reset).
"""
import simboard
import simflash
import timing

WAKEUP_ALL_LOW = False  # ports/esp32/modesp32.c: the level arguments
WAKEUP_ANY_HIGH = True

_NOT_FOUND = 0x1102
_KEY_TOO_LONG = 0x1109
_INVALID_NAME = 0x1106
_INVALID_LENGTH = 0x110C
_ESP_ERR_NOT_FOUND = 0x105
_ESP_ERR_INVALID_ARG = 0x102
_ESP_ERR_OTA_ROLLBACK_INVALID_STATE = 0x1504
_ESP_ERR_OTA_VALIDATE_FAILED = 0x1503
_ENOENT = 2

_NAMES = {
    _NOT_FOUND: "ESP_ERR_NVS_NOT_FOUND",
    _KEY_TOO_LONG: "ESP_ERR_NVS_KEY_TOO_LONG",
    _INVALID_NAME: "ESP_ERR_NVS_INVALID_NAME",
    _INVALID_LENGTH: "ESP_ERR_NVS_INVALID_LENGTH",
    _ESP_ERR_NOT_FOUND: "ESP_ERR_NOT_FOUND",
    _ESP_ERR_INVALID_ARG: "ESP_ERR_INVALID_ARG",
    _ESP_ERR_OTA_ROLLBACK_INVALID_STATE: "ESP_ERR_OTA_ROLLBACK_INVALID_STATE",
    _ESP_ERR_OTA_VALIDATE_FAILED: "ESP_ERR_OTA_VALIDATE_FAILED",
}


def _err(code):
    return OSError(-code, _NAMES.get(code, "ESP_FAIL"))


class NVS:
    """ESP-IDF NVS as the port uses it: set_i32/set_blob/erase_key write
    the key to flash at once, each on its own (one flash op, old or new
    value after a power cut: a key is atomic, several keys are not);
    commit() adds nothing to durability. A reset keeps every key written.
    (ports/esp32/esp32_nvs.c: set_* -> nvs_set_*, commit -> nvs_commit;
    docs/shims.md.)"""

    def __init__(self, namespace):
        if not namespace or len(namespace) > 15:
            raise _err(_INVALID_NAME)
        self._ns = namespace

    def _get(self, key, kind):
        v = simboard.board.nvs.get(self._ns, {}).get(key)
        if v is None or v[0] != kind:
            raise _err(_NOT_FOUND)
        return v[1]

    def _write(self, key, value):
        b = simboard.board
        b.faults.op("nvs-write")  # the key is written now, whole or not at all
        b.nvs_writes += 1
        us = timing.P.nvs_progs * timing.P.flash_prog_us  # the entry, its state bits, the old one's
        if b.nvs_writes % timing.NVS_ENTRIES == 0:
            us += timing.P.flash_erase_us  # a page fills: NVS moves and erases one
        b.clock.flash_op(us, "nvs-write")
        ns = b.nvs.get(self._ns)
        if ns is None:
            ns = b.nvs[self._ns] = {}
        if value is None:
            ns.pop(key, None)
        else:
            ns[key] = value
        if b.on_nvs_commit is not None:
            b.on_nvs_commit()

    def _set(self, key, kind, value):
        if not key or len(key) > 15:
            raise _err(_KEY_TOO_LONG)
        self._write(key, (kind, value))

    def set_i32(self, key, value):
        if not -0x80000000 <= value <= 0x7FFFFFFF:
            raise OverflowError("overflow converting long int to machine word")
        self._set(key, "i32", value)

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        if isinstance(value, str):
            value = value.encode()
        self._set(key, "blob", bytes(value))

    def get_blob(self, key, buffer):
        v = self._get(key, "blob")
        if len(buffer) < len(v):
            raise _err(_INVALID_LENGTH)
        buffer[:len(v)] = v
        return len(v)

    def erase_key(self, key):
        if simboard.board.nvs.get(self._ns, {}).get(key) is None:
            raise _err(_NOT_FOUND)
        self._write(key, None)

    def commit(self):
        pass  # nvs_commit: every key was written when it was set


HEADER_READ = 4096  # what the chip reads of a partition without a valid image


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        # ports/esp32/esp32_partition.c esp32_partition_make_new: an int
        # other than BOOT/RUNNING is a bare ValueError, a label not in the
        # table OSError(ENOENT) (esp32_partition_new: NULL -> ENOENT)
        b = simboard.board
        if isinstance(id, int):
            if id == Partition.BOOT:
                id = b.otadata.boot
            elif id == Partition.RUNNING:
                id = b.otadata.running
            else:
                raise ValueError()
        p = b.partition(id)
        if p is None:
            raise OSError(_ENOENT)
        self._p = p
        self._bs = block_size
        self._r = simflash.Region(p.region.chip, p.addr, p.size, block_size, p.region._prog[:-5])

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=4096):
        out = []
        for p in simboard.board.partitions:
            if p.type == type and (subtype == 0xFF or p.subtype == subtype) \
                    and (label is None or p.label == label):
                out.append(Partition(p.label, block_size))
        return out

    def info(self):
        return self._p.info()

    def readblocks(self, block_num, buf, offset=0):
        try:
            self._r.readblocks(block_num, buf, offset)
        except OSError as e:
            if e.args and e.args[0] == 22:
                raise _err(_ESP_ERR_INVALID_ARG)
            raise

    def writeblocks(self, block_num, buf, offset=None):
        try:
            self._r.writeblocks(block_num, buf, offset)
        except OSError as e:
            if e.args and e.args[0] == 22:
                raise _err(_ESP_ERR_INVALID_ARG)
            raise

    def ioctl(self, cmd, arg):
        return self._r.ioctl(cmd, arg)

    def set_boot(self):
        """esp_ota_set_boot_partition: an OTA app partition only
        (ESP_ERR_INVALID_ARG), holding a valid app image (esp_image_verify:
        header, checksum, appended SHA-256; ESP_ERR_OTA_VALIDATE_FAILED),
        which the chip reads and hashes in one C call (no callbacks run:
        timing.P.image_verify_us_per_kb); then the otadata sector is erased
        and written."""
        import espimage
        b = simboard.board
        if self._p.type != Partition.TYPE_APP or not self._p.label.startswith("ota_"):
            raise _err(_ESP_ERR_INVALID_ARG)
        try:
            n = espimage.check(self._read, self._p.size)
        except espimage.ImageInvalid:
            n = None
        b.clock.block(min(self._p.size, n or HEADER_READ) * timing.P.image_verify_us_per_kb // 1024,
                      what="set_boot-verify")
        if n is None:
            raise _err(_ESP_ERR_OTA_VALIDATE_FAILED)
        b.faults.op("otadata")
        b.clock.flash_op(timing.P.flash_erase_us + timing.P.flash_prog_us, "otadata-write")
        b.otadata.boot = self._p.label
        b.otadata.state[self._p.label] = simboard.OtaData.NEW

    def _read(self, off, n):
        buf = bytearray(n)
        self._r.readblocks(0, buf, off)
        return bytes(buf)

    def get_next_update(self):
        # esp_ota_get_next_update_partition: NULL without OTA partitions,
        # raised as OSError(ENOENT) (esp32_partition.c)
        b = simboard.board
        other = "ota_1" if b.otadata.running == "ota_0" else "ota_0"
        if b.partition(other) is None:
            raise OSError(_ENOENT)
        return Partition(other, self._bs)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        b = simboard.board
        if not b.otadata.rollback_enabled:
            raise _err(_ESP_ERR_NOT_FOUND)
        b.faults.op("otadata")
        b.otadata.state[b.otadata.running] = simboard.OtaData.VALID

    def __repr__(self):
        p = self._p
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % (
            p.type, p.subtype, p.addr, p.size, p.label)


def wake_on_ext0(pin, level):
    """The GPIO whose level ends a light or deep sleep (ports/esp32/
    modesp32.c: machine_rtc_config.ext0_pin/ext0_level, for both kinds of
    sleep; pin None clears it). Only RTC GPIOs can (0, 2, 4, 12-15, 25-27,
    32-39 on the ESP32)."""
    b = simboard.board
    if pin is None:
        b.ext0 = None
        return
    n = pin if isinstance(pin, int) else pin._id
    if n not in (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39):
        raise ValueError("invalid pin")
    b.ext0 = (n, 1 if level else 0)


def mcu_temperature():
    return 45
