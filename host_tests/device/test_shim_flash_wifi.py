"""The node's flash - real LittleFS 2 on a simulated NOR flash with power
loss and EIO at the block device (tools/shims/simflash.py) - and WLAN."""
import time

import network
import simboard
import simflash
from devtest import raises


def _write(fs, path, data):
    with fs.open(path, "wb") as f:
        f.write(data)


def test_files_roundtrip_and_listing():
    fs = simboard.board.fs
    fs.mkdir("/q")
    _write(fs, "/q/a.bin", b"abc")
    with fs.open("/q/a.bin", "ab") as f:
        f.write(b"def")
    with fs.open("/q/a.bin", "rb") as f:
        assert f.read(2) == b"ab" and f.read() == b"cdef"
    with fs.open("/q/t.txt", "w") as f:
        f.write("line1\nline2\n")
    with fs.open("/q/t.txt") as f:
        assert [ln for ln in f] == ["line1\n", "line2\n"]
    assert fs.listdir("/q") == ["a.bin", "t.txt"]
    assert fs.stat("/q/a.bin")[6] == 6
    assert raises(OSError, fs.open, "/q/nope", "rb").args[0] == 2
    assert raises(OSError, fs.open, "/nodir/x", "wb").args[0] == 2


def test_the_filesystem_is_littlefs_on_the_partition_tables_vfs_partition():
    b = simboard.board
    vfs = b.partition("vfs")
    assert (vfs.addr, vfs.size) == (0x310000, 0xF0000)  # partitions-4MiB-ota.csv
    _write(b.fs, "/probe", b"x")
    sb = b.flash.read_bytes(vfs.addr, 64)  # LittleFS superblock in block 0
    assert b"littlefs" in sb


def test_unsynced_writes_are_lost_at_power_loss_synced_survive():
    fs = simboard.board.fs
    _write(fs, "/log", b"old")
    f = fs.open("/log", "wb")
    f.write(b"new content")
    simboard.board.power_cycle()  # no close(): never synced
    assert fs.read_bytes("/log") == b"old"
    f = fs.open("/log", "ab")
    f.write(b"+1")
    f.flush()
    simboard.board.power_cycle()
    assert fs.read_bytes("/log") == b"old+1"


def test_power_loss_at_every_flash_op_of_an_atomic_replace():
    """The pattern the firmware relies on (firmware/storage.write_atomic):
    write NAME.new, close, rename over NAME. A cut at any erase or program
    - torn, half written - leaves the old content or the new, and the
    flash is dead until power returns."""
    def replace(fs, data):
        _write(fs, "/cfg.new", data)
        fs.rename("/cfg.new", "/cfg")

    b = simboard.board
    _write(b.fs, "/cfg", b"v1")
    start = b.faults.ops
    replace(b.fs, b"v2-longer" * 100)
    n_ops = b.faults.ops - start
    assert n_ops >= 3  # file metadata, data, rename at least
    for k in range(1, n_ops + 1):
        b = simboard.new_board()
        _write(b.fs, "/cfg", b"v1")
        b.faults.arm(k)
        raises(simflash.PowerLoss, replace, b.fs, b"v2-longer" * 100)
        raises(simflash.PowerLoss, _write, b.fs, "/other", b"x")  # dead until power returns
        b.power_cycle()
        assert b.fs.read_bytes("/cfg") in (b"v1", b"v2-longer" * 100), k
        _write(b.fs, "/after", b"ok")  # the filesystem still works
        assert b.fs.read_bytes("/after") == b"ok"


def test_injected_write_error_is_eio_and_an_atomic_replace_keeps_the_old_data():
    """An erase or program error raises OSError(EIO) through LittleFS, as
    the ESP32 port's Partition does; written as NAME.new and renamed, the
    old file survives any of them, and the flash still works."""
    b = simboard.board
    _write(b.fs, "/x", b"old")
    start = b.faults.ops
    _write(b.fs, "/x.new", b"data" * 50)
    b.fs.rename("/x.new", "/x")
    n_ops = b.faults.ops - start
    for k in range(1, n_ops + 1):
        b = simboard.new_board()
        _write(b.fs, "/x", b"old")
        b.faults.arm(k, "eio")
        try:
            _write(b.fs, "/x.new", b"data" * 50)
            b.fs.rename("/x.new", "/x")
            raise AssertionError("no error at op %d" % k)
        except OSError as e:
            assert e.args[0] == 5, (k, e)
        b.power_cycle()
        assert b.fs.read_bytes("/x") in (b"old", b"data" * 50), k
        _write(b.fs, "/y", b"new")
        assert b.fs.read_bytes("/y") == b"new"


def test_full_flash_raises_enospc_and_keeps_old_data():
    b = simboard.new_board(fs_blocks=8)
    _write(b.fs, "/a", b"x" * 4096)
    f = b.fs.open("/c", "wb")
    e = None
    for _ in range(16):
        try:
            f.write(b"z" * 4096)
            f.flush()
        except OSError as err:
            e = err
            break
    assert e is not None and e.args[0] == 28
    try:
        f.close()
    except OSError:
        pass
    assert b.fs.read_bytes("/a") == b"x" * 4096


def test_wlan_connects_after_the_scripted_delay():
    simboard.board.wifi.add_ap("ward-7", "secret", rssi=-61)
    simboard.board.wifi.connect_ms = 2000
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.connect("ward-7", "secret")
    assert w.status() == network.STAT_CONNECTING and not w.isconnected()
    time.sleep_ms(1999)
    assert not w.isconnected()
    time.sleep_ms(1)
    assert w.isconnected() and w.status("rssi") == -61
    assert network.WLAN(network.STA_IF).isconnected()  # same radio


def test_wlan_retries_by_itself_and_refuses_a_second_connect_meanwhile():
    """ports/esp32/network_wlan.c: after connect() the port reconnects on
    every disconnection, at once and forever; connect() while an attempt
    is under way raises OSError("Wifi Internal Error")."""
    wifi = simboard.board.wifi
    wifi.add_ap("ward-7", "secret")
    w = network.WLAN(network.STA_IF)
    raises(OSError, w.connect, "ward-7", "secret")  # not active
    w.active(True)
    w.connect("ward-7", "wrong")
    time.sleep_ms(3000)
    assert w.status() == network.STAT_WRONG_PASSWORD  # while it keeps retrying
    e = raises(OSError, w.connect, "ward-7", "secret")
    assert e.args[0] == "Wifi Internal Error"
    w.disconnect()  # stops the retries
    assert w.status() == network.STAT_IDLE
    w.connect("elsewhere", "x")
    time.sleep_ms(3000)
    assert w.status() == network.STAT_NO_AP_FOUND
    w.disconnect()
    wifi.fail_next(1, network.STAT_HANDSHAKE_TIMEOUT)
    w.connect("ward-7", "secret")
    time.sleep_ms(1600)
    assert w.status() == network.STAT_CONNECTING  # a handshake timeout: retrying
    time.sleep_ms(1600)
    assert w.isconnected()
    wifi.drop_at(10000)
    time.sleep_ms(1000)  # dropped at 10 s: the driver is reconnecting on its own
    assert not w.isconnected() and w.status() == network.STAT_CONNECTING
    time.sleep_ms(1600)
    assert w.isconnected()  # without another connect()


def test_wlan_reconnects_stop_after_the_configured_count():
    wifi = simboard.board.wifi
    wifi.add_ap("ward-7", "secret")
    w = network.WLAN(network.STA_IF)
    w.active(True)
    w.config(reconnects=2)
    assert w.config("reconnects") == 2
    wifi.down = True
    w.connect("ward-7", "secret")
    time.sleep_ms(20000)
    r = simboard.board.wlans[0]
    assert r.attempts == 3 and not r.requested  # the first try and 2 reconnects
    wifi.down = False
    time.sleep_ms(5000)
    assert not w.isconnected()
    w.connect()  # a new connect() starts over
    time.sleep_ms(1600)
    assert w.isconnected()
