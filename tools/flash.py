"""`make flash PORT=... FIRMWARE=...`: put MicroPython itself on an ESP32 board.

    python -m tools.flash --firmware ESP32_GENERIC-OTA-v1.27.0.bin --port /dev/ttyUSB0
    python -m tools.flash --firmware FILE --check          # the image only, no board
    python -m tools.flash --firmware FILE --port P --check # plus chip and flash size

FIRMWARE is the merged .bin from micropython.org/download (bootloader,
partition table and application in one file). Before anything is erased
the image is read here: it must be an ESP image, for the chip on the port,
hold a partition table with an NVS partition (the node keeps its key there)
and an application, and fit the board's flash. Only then does esptool
(its Python API, one connection) erase the chip, write with progress,
read the flash back to verify, and reset.

Erasing destroys the node's key and config (NVS, filesystem): a
provisioned node then needs `make provision ROTATE=1`. ERASE=0 keeps them
(a MicroPython upgrade with an unchanged partition table).
Without ota_0/ota_1 partitions (the plain ESP32_GENERIC build) the node
still takes signed file updates; firmware-image updates need an OTA build.
"""
import argparse
import struct
import sys
from pathlib import Path

_IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432  # esp_app_desc_t.magic_word, first in an app's first segment
_PT_FLASH_OFFSET = 0x8000     # where ESP-IDF's partition table lies in flash
_PT_ENTRY = struct.Struct("<2sBBII16sI")
_PT_MAGIC = b"\xaa\x50"
_PT_MD5 = b"\xeb\xeb"
_MAX_IMAGE = 16 * 1024 * 1024
_APP_SUBTYPES = {0x00: "factory", **{0x10 + i: "ota_%d" % i for i in range(16)}}
_DATA_SUBTYPES = {0x00: "otadata", 0x01: "phy", 0x02: "nvs", 0x81: "fat",
                  0x82: "spiffs", 0x83: "littlefs"}
DOWNLOAD = "https://micropython.org/download/ESP32_GENERIC/"


class FlashError(Exception):
    """Refused or failed; str() is the message a user reads."""


def _chips():
    """{image chip id: (esptool chip name, bootloader flash offset)}"""
    from esptool.targets import CHIP_DEFS
    return {cls.IMAGE_CHIP_ID: (name, cls.BOOTLOADER_FLASH_OFFSET)
            for name, cls in CHIP_DEFS.items() if cls.IMAGE_CHIP_ID is not None}


def _cstr(b):
    return b.split(b"\0", 1)[0].decode("ascii", "replace")


def partitions(data, at):
    """ESP-IDF partition table entries at data[at:], as dicts."""
    out = []
    for off in range(at, min(at + 0xC00, len(data) - _PT_ENTRY.size + 1), _PT_ENTRY.size):
        magic, ptype, sub, offset, size, label, _ = _PT_ENTRY.unpack_from(data, off)
        if magic != _PT_MAGIC:
            if magic not in (_PT_MD5, b"\xff\xff"):
                raise FlashError("the partition table is damaged at entry %d" % len(out))
            break
        kind = (_APP_SUBTYPES if ptype == 0 else _DATA_SUBTYPES).get(sub, "0x%02x" % sub)
        out.append({"label": _cstr(label), "type": "app" if ptype == 0 else "data",
                    "subtype": kind, "offset": offset, "size": size})
    return out


def inspect(path):
    """What a merged firmware file holds; raises FlashError for anything a
    board must not be erased for."""
    p = Path(path)
    if not p.is_file():
        raise FlashError("no firmware file %s (download the .bin from %s)" % (path, DOWNLOAD))
    data = p.read_bytes()
    if not data:
        raise FlashError("%s is empty" % path)
    if len(data) > _MAX_IMAGE:
        raise FlashError("%s is %d bytes, more than any ESP32 flash" % (path, len(data)))
    if data[0] != _IMAGE_MAGIC or len(data) < 24:
        raise FlashError("%s is not an ESP firmware image (first byte 0x%02x, expected 0x%02x);"
                         " use the .bin from %s, not .uf2/.elf/.zip"
                         % (path, data[0], _IMAGE_MAGIC, DOWNLOAD))
    chip_id = struct.unpack_from("<H", data, 12)[0]
    chip, boot_offset = _chips().get(chip_id, (None, None))
    if chip is None:
        raise FlashError("%s is for an unknown chip (image chip id %d)" % (path, chip_id))
    pt_at = _PT_FLASH_OFFSET - boot_offset
    parts = partitions(data, pt_at) if len(data) > pt_at else []
    if not parts:
        raise FlashError("%s has no partition table at flash 0x%x: it is an application "
                         "image (MicroPython's .app-bin, for OTA), not the full .bin from %s"
                         % (path, _PT_FLASH_OFFSET, DOWNLOAD))
    apps = [q for q in parts if q["type"] == "app"]
    if not apps:
        raise FlashError("%s: the partition table has no application partition" % path)
    if not any(q["subtype"] == "nvs" for q in parts):
        raise FlashError("%s: the partition table has no NVS partition; the node keeps "
                         "its key and OTA state there" % path)
    app_at = apps[0]["offset"] - boot_offset
    end = boot_offset + len(data)
    if end < apps[0]["offset"] + 0x40 or data[app_at] != _IMAGE_MAGIC:
        raise FlashError("%s is truncated: no application at flash 0x%x (file has %d bytes)"
                         % (path, apps[0]["offset"], len(data)))
    magic, _, _, version, project = struct.unpack_from("<II8s32s32s", data, app_at + 32)
    app = {"project": _cstr(project), "version": _cstr(version)} \
        if magic == APP_DESC_MAGIC else {"project": "?", "version": "?"}
    return {"path": str(p), "bytes": len(data), "chip": chip, "offset": boot_offset,
            "partitions": parts, "app": app,
            "ota_slots": sum(q["subtype"].startswith("ota_") for q in apps),
            "flash_needed": max(q["offset"] + q["size"] for q in parts)}


def describe(info):
    lines = ["firmware: %s, %d bytes, %s %s for %s, written at 0x%x"
             % (info["path"], info["bytes"], info["app"]["project"], info["app"]["version"],
                info["chip"], info["offset"]),
             "partitions: " + ", ".join("%s %s@0x%x+%dK" % (q["label"], q["subtype"], q["offset"],
                                                           q["size"] // 1024)
                                        for q in info["partitions"])]
    if info["ota_slots"] < 2:
        lines.append("note: no ota_0/ota_1 partitions: signed file updates work, firmware-image"
                     " updates (make ota-bundle IMAGE=) need the ESP32_GENERIC-OTA build")
    return lines


def _board_error(e, port):
    text = str(e)
    if "Could not open" in text:
        from tools.provision.board import _why_unopenable
        return FlashError(_why_unopenable(port))
    if "No serial data received" in text or "Failed to connect" in text:
        return FlashError("no ESP32 bootloader answered on %s: check the USB cable (data, not "
                          "charge-only); if the board does not reset by itself, hold BOOT, tap "
                          "EN/RST, release BOOT, and run again" % port)
    return FlashError("esptool: " + text.strip().splitlines()[0])


def flash(info, port, baud=460800, erase=True, check_only=False, attempts=7, log=print):
    """Detect the chip on `port`, then erase, write, verify, reset."""
    from esptool.cmds import (attach_flash, detect_chip, detect_flash_size, erase_flash,
                              reset_chip, run_stub, verify_flash, write_flash)
    from esptool.util import FatalError, flash_size_bytes
    try:
        with detect_chip(port, 115200, connect_attempts=attempts) as esp:
            log("board: %s on %s" % (esp.get_chip_description(), port))
            if esp.IMAGE_CHIP_ID != _chip_id(info["chip"]):
                raise FlashError("the firmware is for %s but the board is %s: nothing was "
                                 "erased; download the build for this chip"
                                 % (info["chip"], esp.CHIP_NAME))
            esp = run_stub(esp)
            if baud != 115200:
                esp.change_baud(baud)
            attach_flash(esp)
            size = detect_flash_size(esp)
            have = flash_size_bytes(size) if size else None
            log("board flash: %s" % (size or "size not detected"))
            if have and info["flash_needed"] > have:
                raise FlashError("the partition table needs %d KB of flash, the board has %s:"
                                 " nothing was erased" % (info["flash_needed"] // 1024, size))
            if check_only:
                return esp.CHIP_NAME
            if erase:
                log("erasing the whole flash (the node's key and config go with it)")
                erase_flash(esp)
            log("writing %d bytes at 0x%x" % (info["bytes"], info["offset"]))
            write_flash(esp, [(info["offset"], info["path"])])
            log("verifying (reading the flash back)")
            verify_flash(esp, [(info["offset"], info["path"])])
            reset_chip(esp, "hard-reset")
            return esp.CHIP_NAME
    except FatalError as e:
        raise _board_error(e, port) from None
    except OSError as e:  # the port vanished mid-way (cable pulled)
        raise FlashError("lost %s: %s; flash again before using the board" % (port, e)) from None


def _chip_id(name):
    from esptool.targets import CHIP_DEFS
    return CHIP_DEFS[name].IMAGE_CHIP_ID


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firmware", required=True, help="MicroPython merged .bin")
    ap.add_argument("--port", help="serial port of the board (not needed with --check)")
    ap.add_argument("--baud", type=int, default=460800)
    ap.add_argument("--no-erase", action="store_true", help="keep NVS (key) and filesystem")
    ap.add_argument("--check", action="store_true", help="inspect only, write nothing")
    ap.add_argument("--connect-attempts", type=int, default=7)
    a = ap.parse_args(argv)
    try:
        info = inspect(a.firmware)
        for line in describe(info):
            print(line)
        if not a.port:
            if a.check:
                print("flash: image check passed; nothing written (add PORT to check the board)")
                return 0
            raise FlashError("set PORT: the board's serial port, e.g. PORT=/dev/ttyUSB0 "
                             "(`mpremote connect list` shows them)")
        chip = flash(info, a.port, a.baud, not a.no_erase, a.check, a.connect_attempts)
    except FlashError as e:
        print("flash: error: %s" % e, file=sys.stderr)
        return 1
    if a.check:
        print("flash: check passed (%s); nothing written" % chip)
    else:
        print("flash: %s written and verified; next: make deploy PORT=%s" % (chip, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
