"""Virtual clock: the time base every simulated node and test runs on."""
import time

import simboard
import vclock
from devtest import raises


def test_ticks_follow_sleeps_only():
    simboard.new_board()
    t0 = time.ticks_ms()
    assert time.ticks_ms() == t0  # no wall time leaks in
    time.sleep_ms(250)
    assert time.ticks_diff(time.ticks_ms(), t0) == 250
    u0 = time.ticks_us()
    time.sleep_us(37)
    assert time.ticks_diff(time.ticks_us(), u0) == 37


def test_ticks_wrap_at_2_pow_30_like_the_esp32():
    # start 5 ms before ticks_ms wraps
    simboard.new_board(start_us=((1 << 30) - 5) * 1000)
    t0 = time.ticks_ms()
    assert t0 == (1 << 30) - 5
    time.sleep_ms(10)
    t1 = time.ticks_ms()
    assert t1 == 5  # wrapped
    assert time.ticks_diff(t1, t0) == 10
    assert time.ticks_diff(t0, t1) == -10
    assert time.ticks_add(t0, 10) == t1
    assert time.ticks_add(3, -5) == (1 << 30) - 2


def test_events_fire_in_due_order_inside_a_sleep():
    simboard.new_board()
    clk = vclock.clock
    seen = []
    clk.call_later_us(3000, lambda: seen.append(("b", clk.now_us)))
    clk.call_later_us(1000, lambda: seen.append(("a", clk.now_us)))
    clk.call_later_us(1000, lambda: seen.append(("a2", clk.now_us)))  # same time: FIFO
    time.sleep_ms(2)
    assert seen == [("a", 1000), ("a2", 1000)]
    time.sleep_ms(5)
    assert seen[2] == ("b", 3000)
    assert clk.now_us == 7000


def test_periodic_event_and_cancel():
    simboard.new_board()
    clk = vclock.clock
    hits = []
    h = clk.call_later_us(100, lambda: hits.append(clk.now_us), 100)
    time.sleep_us(450)
    assert hits == [100, 200, 300, 400]
    clk.cancel(h)
    time.sleep_us(500)
    assert len(hits) == 4 and clk.pending() == 0


def test_ticks_reads_do_not_allocate():
    import devtest
    simboard.new_board(start_us=(1 << 40))  # big host-side time, small ticks
    def read():
        time.ticks_ms()
        time.ticks_us()
        time.ticks_diff(5, 3)
    read()
    devtest.assert_no_alloc(read)


def test_sleep_raises_what_an_event_raises():
    simboard.new_board()
    def boom():
        raise simboard.NodeReset(simboard.WDT_RESET)
    vclock.clock.call_later_us(500, boom)
    e = raises(simboard.NodeReset, time.sleep_ms, 1)
    assert e.cause == simboard.WDT_RESET
