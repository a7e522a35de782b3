"""esp32 shim: NVS commit semantics and the OTA partitions/bootloader."""
import esp32
import simflash
import simboard
import otafixture as fx
from devtest import raises

NOT_FOUND = -0x1102


def test_every_nvs_key_is_durable_when_set_commit_adds_nothing():
    """ESP-IDF writes each key on its own (ports/esp32/esp32_nvs.c)."""
    nvs = esp32.NVS("vital")
    nvs.set_i32("boots", 7)
    nvs.set_blob("key", b"\x01\x02\x03")
    simboard.board.reset(simboard.SOFT_RESET)  # no commit()
    nvs = esp32.NVS("vital")
    assert nvs.get_i32("boots") == 7
    buf = bytearray(8)
    assert nvs.get_blob("key", buf) == 3 and buf[:3] == b"\x01\x02\x03"


def test_power_lost_between_two_keys_leaves_the_first_written():
    """So state that must change together cannot be two keys (nvsrec)."""
    nvs = esp32.NVS("v")
    b = simboard.board
    b.faults.arm(2)
    nvs.set_i32("a", 1)
    raises(simflash.PowerLoss, nvs.set_i32, "b", 1)
    b.power_cycle()
    nvs = esp32.NVS("v")
    assert nvs.get_i32("a") == 1
    assert raises(OSError, nvs.get_i32, "b").args[0] == NOT_FOUND


def test_nvs_errors_as_the_port_raises_them():
    nvs = esp32.NVS("ns")
    e = raises(OSError, nvs.get_blob, "missing", bytearray(4))
    assert e.args[0] == NOT_FOUND and e.args[1] == "ESP_ERR_NVS_NOT_FOUND"
    nvs.set_blob("b", b"12345")
    assert raises(OSError, nvs.get_blob, "b", bytearray(4)).args[0] == -0x110C
    assert raises(OSError, nvs.get_i32, "b").args[0] == NOT_FOUND  # type mismatch
    raises(OSError, nvs.set_i32, "k" * 16, 1)
    raises(OverflowError, nvs.set_i32, "big", 1 << 31)
    raises(OSError, esp32.NVS, "n" * 16)


def test_nvs_erase_and_namespaces_are_separate():
    a = esp32.NVS("a")
    b = esp32.NVS("b")
    a.set_i32("x", 1)
    b.set_i32("x", 2)
    a.commit()
    b.commit()
    assert a.get_i32("x") == 1 and b.get_i32("x") == 2
    a.erase_key("x")
    a.commit()
    raises(OSError, a.get_i32, "x")
    raises(OSError, a.erase_key, "x")
    assert esp32.NVS("b").get_i32("x") == 2


def test_partition_blocks_erase_to_ff_and_program_ones_to_zeros():
    run = esp32.Partition(esp32.Partition.RUNNING)
    nxt = run.get_next_update()
    assert run.info()[4] == "ota_0" and nxt.info()[4] == "ota_1"
    assert nxt.ioctl(5, 0) == 4096 and nxt.ioctl(4, 0) == 0x180000 // 4096
    buf = bytearray(16)
    nxt.readblocks(3, buf)
    assert buf == b"\xff" * 16
    block = bytearray(4096)
    for i in range(4096):
        block[i] = i & 0xFF
    nxt.writeblocks(3, block)
    back = bytearray(4096)
    nxt.readblocks(3, back)
    assert back == block
    nxt.writeblocks(3, b"\x0f", 1)  # partial write without erase: AND
    nxt.readblocks(3, buf, 0)
    assert buf[1] == 0x01 & 0x0F
    raises(OSError, nxt.readblocks, 0x180000 // 4096, bytearray(1))


def _next_with_image(img=None):
    nxt = esp32.Partition(esp32.Partition.RUNNING).get_next_update()
    img = fx.app_image() if img is None else img
    buf = bytearray((len(img) + 4095) // 4096 * 4096)
    buf[:len(img)] = img
    nxt.writeblocks(0, buf)
    return nxt


def test_bootloader_reverts_an_unconfirmed_update():
    _next_with_image().set_boot()
    simboard.board.reset(simboard.HARD_RESET)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_1"
    # new image never calls mark_app_valid_cancel_rollback -> next reset reverts
    simboard.board.reset(simboard.WDT_RESET)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_0"
    assert simboard.board.otadata.rollbacks == 1


def test_bootloader_keeps_a_confirmed_update():
    _next_with_image().set_boot()
    simboard.board.reset(simboard.HARD_RESET)
    esp32.Partition.mark_app_valid_cancel_rollback()
    simboard.board.reset(simboard.HARD_RESET)
    simboard.board.reset(simboard.PWRON_RESET)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_1"
    assert esp32.Partition(esp32.Partition.BOOT).info()[4] == "ota_1"
    assert len(esp32.Partition.find(esp32.Partition.TYPE_APP)) == 2


def test_a_soft_reset_does_not_run_the_bootloader():
    """Ctrl-D restarts MicroPython, not the chip (ports/esp32/main.c)."""
    _next_with_image().set_boot()
    simboard.board.reset(simboard.SOFT_RESET)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_0"
    simboard.board.reset(simboard.HARD_RESET)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_1"


def test_set_boot_refuses_what_is_not_a_valid_app_image():
    """esp_ota_set_boot_partition runs esp_image_verify: ESP_ERR_OTA_VALIDATE_FAILED."""
    good = fx.app_image(size=3000)
    bad_sum = bytearray(good)
    bad_sum[24 + 8 + 100] ^= 1  # a data byte: checksum and digest both break
    bad_digest = bytearray(good)
    bad_digest[-1] ^= 1
    bad_magic = b"\xE8" + good[1:]
    cut = good[:2000]
    for img in (bytes(bad_sum), bytes(bad_digest), bad_magic, cut, b"\xff" * 64):
        nxt = _next_with_image(img)
        e = raises(OSError, nxt.set_boot)
        assert e.args[0] == -0x1503, (e.args, img[:4])
        assert simboard.board.otadata.boot == "ota_0"
    _next_with_image(good).set_boot()
    assert simboard.board.otadata.boot == "ota_1"


def test_set_boot_checks_the_image_in_one_blocking_call():
    """Reading and hashing the image runs no scheduled callback: a timer's
    callback due meanwhile runs only when set_boot returns."""
    import machine
    img = fx.app_image(size=60000)
    nxt = _next_with_image(img)
    clock = simboard.board.clock
    ran = []
    t = machine.Timer(0)
    t.init(mode=machine.Timer.ONE_SHOT, period=1, callback=lambda _: ran.append(clock.now_us))
    t0 = clock.now_us
    nxt.set_boot()
    # read + hash at 10 MB/s and 8 MB/s (timing.py's typical profile), and
    # before the otadata sector's erase (which would hold the ISR longer)
    assert ran and len(img) * 200 // 1024 <= ran[0] - t0 <= len(img) * 300 // 1024
    t.deinit()


def test_partitions_not_found_as_the_port_reports_them():
    e = raises(OSError, esp32.Partition, "nvs2")
    assert e.args[0] == 2  # ENOENT
    raises(ValueError, esp32.Partition, 7)
    assert esp32.Partition.find(esp32.Partition.TYPE_APP, label="nope") == []


def test_mark_valid_without_rollback_support_raises():
    simboard.board.otadata.rollback_enabled = False
    e = raises(OSError, esp32.Partition.mark_app_valid_cancel_rollback)
    assert e.args[0] == -261
