"""`make flash` as far as a machine without a board allows: the image checks
that run before anything is erased (on images esptool itself builds and
reads), the real esptool talking to a port where no bootloader answers,
and the order of the board steps (a wrong chip or a too-small flash
erases nothing)."""
import os
import pty
import struct
import subprocess
import sys

import pytest

from tools import flash
from tools.paths import ROOT

FACTORY = [("nvs", 1, 0x02, 0x9000, 0x6000), ("phy_init", 1, 0x01, 0xF000, 0x1000),
           ("factory", 0, 0x00, 0x10000, 0x1F0000), ("vfs", 1, 0x81, 0x200000, 0x200000)]
OTA = [("nvs", 1, 0x02, 0x9000, 0x4000), ("otadata", 1, 0x00, 0xD000, 0x2000),
       ("phy_init", 1, 0x01, 0xF000, 0x1000), ("ota_0", 0, 0x10, 0x10000, 0x180000),
       ("ota_1", 0, 0x11, 0x190000, 0x180000), ("vfs", 1, 0x81, 0x310000, 0xF0000)]


def esp_image(chip="esp32", desc=None):
    """An ESP-IDF image file as esptool writes it; with `desc`
    (version, project) its first segment is an application description."""
    from esptool.bin_image import LoadFirmwareImage, ImageSegment
    import esptool.bin_image as bi
    cls = {"esp32": bi.ESP32FirmwareImage, "esp32s3": bi.ESP32S3FirmwareImage}[chip]
    img = cls()
    img.entrypoint = 0x40080000
    body = bytes(256)
    if desc:
        body = struct.pack("<II8s32s32s", 0xABCD5432, 0, b"", desc[0].encode(),
                           desc[1].encode()).ljust(256, b"\0")
    img.segments = [ImageSegment(img.ROM_LOADER.DROM_MAP_START + 0x20, body)]
    path = "/tmp/vn-flash-img-%d.bin" % os.getpid()
    img.save(path)
    data = open(path, "rb").read()
    os.unlink(path)
    assert LoadFirmwareImage(chip, data).chip_id == img.ROM_LOADER.IMAGE_CHIP_ID
    return data


def table(rows):
    """An ESP-IDF partition table: 32-byte entries, then the end marker."""
    out = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, s, off, size,
                               name.encode(), 0) for name, t, s, off, size in rows)
    return out + b"\xff" * 32


def merged(tmp_path, rows=FACTORY, chip="esp32", boot=0x1000, name="fw.bin"):
    """A merged .bin as micropython.org ships it: bootloader at `boot`,
    partition table at flash 0x8000, application at the first app partition."""
    app_at = min(r[3] for r in rows if r[1] == 0)
    app = esp_image(chip, ("v1.27.0", "micropython"))
    data = bytearray(b"\xff" * (app_at - boot + len(app)))
    boot_img = esp_image(chip)
    data[:len(boot_img)] = boot_img
    pt = table(rows)
    data[0x8000 - boot:0x8000 - boot + len(pt)] = pt
    data[app_at - boot:] = app
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tools.flash", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_micropython_bin_passes_the_check_and_says_what_it_holds(tmp_path):
    r = run_cli("--firmware", merged(tmp_path), "--check")
    assert r.returncode == 0, r.stderr
    assert "micropython v1.27.0 for esp32, written at 0x1000" in r.stdout
    assert "nvs nvs@0x9000+24K" in r.stdout and "factory factory@0x10000" in r.stdout
    assert "ESP32_GENERIC-OTA" in r.stdout  # no ota_0/ota_1: image updates need the OTA build
    assert "nothing written" in r.stdout


def test_an_ota_build_has_two_slots_and_no_warning(tmp_path):
    info = flash.inspect(merged(tmp_path, OTA))
    assert info["ota_slots"] == 2 and info["flash_needed"] == 0x400000
    assert not any("note" in line for line in flash.describe(info))


def test_an_s3_image_goes_to_offset_zero(tmp_path):
    info = flash.inspect(merged(tmp_path, chip="esp32s3", boot=0x0))
    assert (info["chip"], info["offset"]) == ("esp32s3", 0)


@pytest.mark.parametrize("make, why", [
    (lambda d, p: p.write_bytes(esp_image("esp32", ("v1.27.0", "micropython"))), "app-bin"),
    (lambda d, p: p.write_bytes(b"PK\x03\x04" + bytes(4000)), "not an ESP firmware image"),
    (lambda d, p: p.write_bytes(b""), "empty"),
    (lambda d, p: p.write_bytes(d.read_bytes()[:0x9000]), "truncated"),
    (lambda d, p: p.write_bytes(d.read_bytes()[:0x7000 + 40] + b"\x00" * 64), "damaged"),
])
def test_a_wrong_or_broken_file_is_refused_with_the_reason(tmp_path, make, why):
    good = merged(tmp_path)
    bad = tmp_path / "bad.bin"
    make(good, bad)
    r = run_cli("--firmware", bad, "--port", "/dev/null-board")
    assert r.returncode == 1
    assert why in r.stderr and "Traceback" not in r.stderr


def test_a_table_without_nvs_is_refused(tmp_path):
    with pytest.raises(flash.FlashError, match="no NVS partition"):
        flash.inspect(merged(tmp_path, FACTORY[1:]))


def test_a_missing_file_points_at_the_download(tmp_path):
    r = run_cli("--firmware", tmp_path / "nope.bin", "--check")
    assert r.returncode == 1 and "micropython.org/download" in r.stderr


def test_flashing_needs_a_port(tmp_path):
    r = run_cli("--firmware", merged(tmp_path))
    assert r.returncode == 1 and "set PORT" in r.stderr


def test_make_flash_asks_for_its_arguments():
    r = subprocess.run(["make", "-s", "flash", "PORT=/dev/ttyUSB9"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "set FIRMWARE" in r.stdout + r.stderr


def test_no_such_port_is_a_clear_error(tmp_path):
    r = run_cli("--firmware", merged(tmp_path), "--port", "/dev/ttyUSB-vn-none")
    assert r.returncode == 1 and "no such port /dev/ttyUSB-vn-none" in r.stderr


def test_a_port_where_no_bootloader_answers(tmp_path):
    """The real esptool on a serial line nobody answers (a pty): it gives up
    and the user is told what to check; nothing else happens."""
    master, slave = pty.openpty()
    try:
        r = run_cli("--firmware", merged(tmp_path), "--port", os.ttyname(slave),
                    "--connect-attempts", "1")
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 1
    assert "no ESP32 bootloader answered" in r.stderr and "hold BOOT" in r.stderr


class FakeEsp:
    """What tools.flash asks of esptool's loader, recording the board steps."""

    def __init__(self, chip, flash_size, steps):
        from esptool.targets import CHIP_DEFS
        self.CHIP_NAME = CHIP_DEFS[chip].CHIP_NAME
        self.IMAGE_CHIP_ID = CHIP_DEFS[chip].IMAGE_CHIP_ID
        self.size, self.steps = flash_size, steps

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def get_chip_description(self):
        return self.CHIP_NAME

    def change_baud(self, baud):
        self.steps.append("baud")


@pytest.fixture
def board(monkeypatch):
    import esptool.cmds as cmds
    state = {"chip": "esp32", "size": "4MB", "steps": []}
    steps = state["steps"]

    def detect(port, baud, connect_attempts):
        return FakeEsp(state["chip"], state["size"], steps)
    monkeypatch.setattr(cmds, "detect_chip", detect)
    monkeypatch.setattr(cmds, "run_stub", lambda esp: steps.append("stub") or esp)
    monkeypatch.setattr(cmds, "attach_flash", lambda esp: steps.append("attach"))
    monkeypatch.setattr(cmds, "detect_flash_size", lambda esp: esp.size)
    monkeypatch.setattr(cmds, "erase_flash", lambda esp: steps.append("erase"))
    monkeypatch.setattr(cmds, "write_flash", lambda esp, ad: steps.append(("write", ad[0][0])))
    monkeypatch.setattr(cmds, "verify_flash", lambda esp, ad: steps.append(("verify", ad[0][0])))
    monkeypatch.setattr(cmds, "reset_chip", lambda esp, mode: steps.append(mode))
    return state


def test_board_steps_in_order(tmp_path, board):
    flash.flash(flash.inspect(merged(tmp_path)), "/dev/x", log=lambda s: None)
    assert board["steps"] == ["stub", "baud", "attach", "erase", ("write", 0x1000),
                              ("verify", 0x1000), "hard-reset"]


def test_keeping_nvs_skips_the_erase(tmp_path, board):
    flash.flash(flash.inspect(merged(tmp_path)), "/dev/x", erase=False, log=lambda s: None)
    assert "erase" not in board["steps"] and ("write", 0x1000) in board["steps"]


def test_a_wrong_chip_erases_nothing(tmp_path, board):
    board["chip"] = "esp32s3"
    with pytest.raises(flash.FlashError, match="for esp32 but the board is ESP32-S3"):
        flash.flash(flash.inspect(merged(tmp_path)), "/dev/x", log=lambda s: None)
    assert board["steps"] == []


def test_a_too_small_flash_erases_nothing(tmp_path, board):
    board["size"] = "2MB"  # the factory layout's vfs ends at 4 MB
    with pytest.raises(flash.FlashError, match="needs 4096 KB of flash, the board has 2MB"):
        flash.flash(flash.inspect(merged(tmp_path)), "/dev/x", log=lambda s: None)
    assert "erase" not in board["steps"] and not any(type(s) is tuple for s in board["steps"])
