"""Flash filesystem model (power loss, ENOSPC, atomic rename) and WLAN."""
import time

import flashfs
import network
import simboard
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
        assert [l for l in f] == ["line1\n", "line2\n"]
    assert fs.listdir("/q") == ["a.bin", "t.txt"]
    assert fs.stat("/q/a.bin")[6] == 6
    assert raises(OSError, fs.open, "/q/nope", "rb").args[0] == 2
    assert raises(OSError, fs.open, "/nodir/x", "wb").args[0] == 2


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


def test_power_loss_at_every_op_of_an_atomic_replace():
    """The pattern later issues rely on: write tmp, sync, rename over."""
    def replace(fs, data):
        _write(fs, "/cfg.tmp", data)
        fs.rename("/cfg.tmp", "/cfg")

    b = simboard.board
    _write(b.fs, "/cfg", b"v1")
    start = b.faults.ops
    replace(b.fs, b"v2-longer")
    n_ops = b.faults.ops - start
    assert n_ops == 4  # create, write, sync, rename
    for k in range(1, n_ops + 1):
        b = simboard.new_board()
        _write(b.fs, "/cfg", b"v1")
        b.faults.arm(k)
        raises(flashfs.PowerLoss, replace, b.fs, b"v2-longer")
        raises(flashfs.PowerLoss, b.fs.open, "/other", "wb")  # dead until power returns
        b.power_cycle()
        assert b.fs.read_bytes("/cfg") in (b"v1", b"v2-longer")
        assert (b.fs.read_bytes("/cfg") == b"v2-longer") == (k > n_ops)


def test_injected_write_error_is_eio_and_the_node_keeps_running():
    fs = simboard.board.fs
    simboard.board.faults.arm(2, "eio")
    f = fs.open("/x", "wb")  # op 1: create
    assert raises(OSError, f.write, b"data").args[0] == 5
    f.write(b"data")
    f.close()
    assert fs.read_bytes("/x") == b"data"


def test_full_flash_raises_enospc_and_keeps_old_data():
    b = simboard.new_board(fs_blocks=3)
    _write(b.fs, "/a", b"x" * 4096)
    _write(b.fs, "/b", b"y" * 4096)
    f = b.fs.open("/c", "wb")  # third block
    assert raises(OSError, f.write, b"z" * 5000).args[0] == 28
    f.close()
    assert b.fs.read_bytes("/a") == b"x" * 4096
    assert b.fs.statvfs("/")[3] == 0
    assert raises(OSError, b.fs.mkdir, "/d").args[0] == 28


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


def test_wlan_wrong_password_missing_ap_scripted_failures_and_drops():
    wifi = simboard.board.wifi
    wifi.add_ap("ward-7", "secret")
    w = network.WLAN(network.STA_IF)
    raises(OSError, w.connect, "ward-7", "secret")  # not active
    w.active(True)
    w.connect("ward-7", "wrong")
    time.sleep_ms(3000)
    assert w.status() == network.STAT_WRONG_PASSWORD
    w.connect("elsewhere", "x")
    time.sleep_ms(3000)
    assert w.status() == network.STAT_NO_AP_FOUND
    wifi.fail_next(1, network.STAT_HANDSHAKE_TIMEOUT)
    w.connect("ward-7", "secret")
    time.sleep_ms(3000)
    assert w.status() == network.STAT_HANDSHAKE_TIMEOUT
    w.connect("ward-7", "secret")
    time.sleep_ms(3000)
    assert w.isconnected()
    wifi.drop_at(10000)
    time.sleep_ms(5000)
    assert not w.isconnected() and w.status() == network.STAT_BEACON_TIMEOUT
