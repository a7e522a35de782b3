"""Time as the ESP32 spends it: a blocking C call holds the sampler's timer
back (its callback runs late, at the next point where the port runs
callbacks); a call longer than the sensor FIFO's 160 ms loses samples, and
the node counts every one; network waits let callbacks run every 100 ms,
DNS and the handshake's public-key work do not."""
import machine
import simboard
import simmax
import simnet
import timing
import vclock

from firmware.pump import Pump
from firmware.sampler import Sampler
from max86150 import MAX86150

RSA_SITE = {"ca": "rsa3072", "server": "rsa2048"}
EC_SITE = {"ca": "ec256", "server": "ec256"}


def _pumped_node():
    chip = simmax.attach(simmax.SimMAX86150(int_pin=4))
    s = MAX86150(machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21)))
    s.configure()
    smp = Sampler(s, int_pin=machine.Pin(4, machine.Pin.IN, machine.Pin.PULL_UP), ring_len=256)
    pump = Pump(smp, None, machine.WDT(timeout=10000))
    return chip, smp, pump


def test_a_blocking_call_longer_than_the_fifo_holds_loses_samples_and_each_is_counted():
    chip, smp, pump = _pumped_node()
    clk = simboard.board.clock
    clk.sleep_us(1000000)
    ticks = pump.ticks
    t0 = clk.now_us
    clk.block(120000)  # 120 ms without callbacks: the FIFO (32 = 160 ms) bridges it
    # the one tick due meanwhile (the pump re-arms a one-shot timer) ran
    # late, when the call returned
    assert pump.ticks == ticks + 1 and clk.now_us >= t0 + 120000
    clk.sleep_us(500000)
    assert chip.dropped == 0 and 24 <= chip.fill_max < 32
    clk.block(400000)  # a worst-case flash sector erase's length
    clk.sleep_us(500000)
    assert chip.dropped >= 400 * 200 // 1000 - 32 - 8
    # the node's own count is the chip's ground truth (the overflow counter,
    # and past its saturation the gap on the sample clock)
    assert smp.lost + smp.lost_estimated == chip.dropped
    assert chip.fill_max == 32 and chip.first_drop_us is not None
    assert simboard.board.timer_latency_max_us[0] >= 400000 - 40000


def test_network_waits_run_callbacks_every_100_ms_and_dns_runs_none():
    clk = simboard.board.clock
    runs = []
    t = machine.Timer(1)
    t.init(mode=machine.Timer.PERIODIC, period=20, callback=lambda _: runs.append(clk.now_us))
    net = simnet.SimNet(RSA_SITE)
    t0 = clk.now_us
    net.wait(1000000)  # a socket read waiting for the broker's answer
    gaps = [b - a for a, b in zip([t0] + runs, runs)]
    assert runs and max(gaps) <= simnet.POLL_US + 20000
    timing.use("worst")
    try:
        runs[:] = []
        t0 = clk.now_us
        net.resolve("ward.example.org")  # an unanswered resolver: no callback for seconds
        assert not [r for r in runs if r < clk.now_us] and clk.now_us - t0 == timing.P.dns_us
        assert clk.sched_dropped > 0  # 8 ticks queued, the rest lost
        n = net.dns_lookups
        net.resolve("10.0.0.5")  # an address: no lookup, no time
        assert net.dns_lookups == n
    finally:
        timing.use("typical")
        t.deinit()


class _Peer:
    """A raw socket whose far end is a real process (the broker)."""

    def write(self, buf, *a):
        return len(buf)

    def close(self):
        pass


def test_while_a_real_peer_owes_an_answer_the_clock_does_not_outrun_the_wall_clock():
    # the broker and the gateway answer in real time: a node that polls for
    # their answer must not see 50 ms of virtual time pass per real instant
    clk = simboard.board.clock
    net = simnet.SimNet(RSA_SITE)
    wall = [0]
    waits = []

    def sleep(us):  # a wall clock the test moves
        waits.append(us)
        wall[0] += us
    real = (vclock.real_sleep_us, vclock.real_ticks_us, vclock.real_diff_us)
    vclock.real_sleep_us = sleep
    vclock.real_ticks_us = lambda: wall[0]
    vclock.real_diff_us = lambda a, b: a - b
    try:
        clk.sleep_us(50000)
        assert waits == []  # nothing asked: as fast as the host goes
        s = simnet._Sock(net, _Peer())
        s.write(b"PUBLISH")
        clk.sleep_us(50000)
        assert waits == [50000]  # this sleep took its own length of wall time too
        wall[0] += 30000  # the host ran the node's Python for 30 ms meanwhile
        clk.sleep_us(50000)
        assert waits[-1] == 20000  # virtual time catches up with the wall, no further
        clk.sleep_us(simnet.AWAIT_US)
        assert waits[-1] == simnet.AWAIT_US - 100000  # up to the window's end, no further
        n = len(waits)
        clk.sleep_us(50000)
        assert len(waits) == n  # the window is over
        s.write(b"DISCONNECT")
        s.close()
        clk.sleep_us(50000)
        assert len(waits) == n  # a closed socket owes nothing
        s2 = simnet._Sock(net, _Peer())
        s2.write(b"CONNECT")
        del s2  # a reset abandons it unclosed: its hold ends with its window
        clk.sleep_us(simnet.AWAIT_US + 50000)
        n = len(waits)
        simnet._Sock(net, _Peer()).write(b"CONNECT")
        assert len(net._owing) == 1  # the abandoned one's entry is gone
    finally:
        vclock.real_sleep_us, vclock.real_ticks_us, vclock.real_diff_us = real


def test_the_sites_rsa_keys_keep_the_handshake_inside_the_fifo_and_ec_keys_would_not():
    """The handshake's public-key work runs in one C call with no callbacks
    (extmod/modtls_mbedtls.c): it must be shorter than the FIFO's 160 ms
    less a pump period, even with worst-case figures."""
    slack_us = 160000 - 30000  # less one pump period
    for profile in ("typical", "worst"):
        p = timing.PROFILES[profile]
        for suite in ("TLS-RSA-WITH-AES-128-GCM-SHA256", "AES256-GCM-SHA384"):
            assert simnet.handshake_us(suite, RSA_SITE, p) <= slack_us, (profile, suite)
        ec = simnet.handshake_us("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", EC_SITE, p)
        assert ec > 10 * slack_us  # seconds: every connect would lose samples
        assert simnet.handshake_us("ECDHE-RSA-AES128-GCM-SHA256", RSA_SITE, p) > slack_us


def test_flash_and_nvs_writes_take_their_time_and_hold_the_timer():
    import esp32
    clk = simboard.board.clock
    runs = []
    t = machine.Timer(2)
    t.init(mode=machine.Timer.PERIODIC, period=10, callback=lambda _: runs.append(clk.now_us))
    try:
        region = simboard.board.partition("ota_1").region
        t0 = clk.now_us
        region.ioctl(6, 0)  # erase one 4 KB sector
        assert clk.now_us - t0 == timing.P.flash_erase_us
        assert runs and runs[0] >= t0 + timing.P.flash_erase_us  # held back, run after
        n = len(runs)
        t0 = clk.now_us
        esp32.NVS("t").set_i32("k", 1)
        assert clk.now_us - t0 >= timing.P.nvs_progs * timing.P.flash_prog_us
        assert len(runs) <= n + 1
    finally:
        t.deinit()


def test_ticks_cpu_counts_cycles_of_the_cpu_clock():
    clk = vclock.clock
    a = vclock.ticks_cpu()
    clk.advance_to(clk.now_us + 1000)
    assert vclock.ticks_diff(vclock.ticks_cpu(), a) == 160 * 1000  # 160 MHz
    machine.freq(240000000)
    a = vclock.ticks_cpu()
    clk.advance_to(clk.now_us + 1000)
    assert vclock.ticks_diff(vclock.ticks_cpu(), a) == 240 * 1000


def test_wall_time_counts_from_2000_as_on_the_esp32():
    """The port keeps MICROPY_EPOCH_IS_2000 (py/mpconfig.h); the unix port
    counts from 1970. Device code reads wall time through machine.RTC (the
    compile layer refuses time.gmtime & co.); the VMs' shimmed `time`
    matches the chip for a REPL user."""
    from devtest import ON_MICROPYTHON, skip
    rtc = machine.RTC()
    rtc.datetime((2026, 12, 1, 1, 8, 30, 0, 0))
    assert rtc.datetime()[:7] == (2026, 12, 1, 1, 8, 30, 0)  # weekday 1 = Tuesday
    if not ON_MICROPYTHON:
        skip("time.gmtime is CPython's own under pytest")
    import time
    assert time.gmtime(0) == (2000, 1, 1, 0, 0, 0, 5, 1)  # a Saturday, 8 fields
    assert time.mktime((2000, 1, 2, 0, 0, 0, 0, 0)) == 86400
    assert time.gmtime(time.mktime((2026, 12, 1, 8, 30, 0, 0, 0)))[:6] == (2026, 12, 1, 8, 30, 0)
    assert time.gmtime()[:4] == (2026, 12, 1, 8)
