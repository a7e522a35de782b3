"""The battery on the host side: the gateway decodes and stores the status
frame's mV and % (and still reads a status from before them), the site file
carries the battery block, and the simulated cell drains by exactly what the
energy model prices."""
import json
import struct

import pytest

from tools import hostshims

hostshims.install()

from firmware import framedec, frames  # noqa: E402
from tools.power import model  # noqa: E402

HDR = (bytes.fromhex("240ac4000001"), 7, 1700000000, 1234, frames.T_WALL)


def _tag(body):
    return b"\0" * 32


def test_status_frames_carry_the_battery_and_older_ones_still_decode():
    d = framedec.decode(frames.seal(frames.status(HDR, 60, 40000, 1, -60, 0, 1, 0, 6000, 3360, 15),
                                    _tag))
    assert (d["battery_mv"], d["battery_pct"], d["uptime_s"], d["version_code"]) == (3360, 15, 60, 6000)
    d = framedec.decode(frames.seal(frames.status(HDR, 60, 40000, 1, -60, 0, 1, 0, 6000), _tag))
    assert d["battery_mv"] is None and d["battery_pct"] is None  # no battery monitor
    # a node from before the monitor: the 24-byte status
    old = struct.pack(">IIBbIHII", 60, 40000, 1, -60, 0, 1, 0, 6000)
    body = frames.header(frames.STATUS, *HDR, len(old)) + old
    d = framedec.decode(frames.seal(body, _tag))
    assert d["uptime_s"] == 60 and d["battery_mv"] is None and d["battery_pct"] is None
    for mv, pct in ((3360, 101), (3360, 254), (3360, 255)):  # no such percentage; mV without one
        bad = frames.seal(frames.status(HDR, 60, 40000, 1, -60, 0, 1, 0, 6000, mv, pct), _tag)
        with pytest.raises(frames.FrameError, match="battery"):
            framedec.decode(bad)
    for n in (23, 25, 28):
        p = bytes(n)
        with pytest.raises(frames.FrameError, match="status payload"):
            framedec.decode(frames.seal(frames.header(frames.STATUS, *HDR, n) + p, _tag))


def test_the_gateway_stores_the_battery_of_a_status_frame(tmp_path):
    from host_tests.host.wardhelp import DEV_A, WardRig
    w = WardRig(tmp_path)
    try:
        w.seen(DEV_A, w.status(DEV_A, battery=(3725, 50)))
        kind, f = w.gw.latest(DEV_A)
        assert kind == "status" and (f["battery_mv"], f["battery_pct"]) == (3725, 50)
    finally:
        w.close()


def test_the_site_file_carries_the_battery_block(tmp_path):
    from tools.provision.site import SiteError, dev_site, device_config, load_site
    path = dev_site(tmp_path / "site")
    site = json.loads(path.read_text())
    site["battery"] = {"adc_pin": 34, "divider": 3.0}
    path.write_text(json.dumps(site))
    cfg = device_config(load_site(path), "240ac4000001")
    assert cfg["battery"] == {"adc_pin": 34, "divider": 3.0}
    site["battery"] = {"adc_pin": 4}
    path.write_text(json.dumps(site))
    with pytest.raises(SiteError, match="battery.adc_pin"):
        device_config(load_site(path), "240ac4000001")


def test_the_simulated_cell_drains_by_the_energy_models_current():
    import powerstate
    import simbattery
    import simboard
    import vclock
    b = simboard.new_board()
    price = model.prices("max86150")
    cell = simbattery.Battery(b.power, 500, 100, price, 35, 2.0)
    clk = vclock.clock
    # a mixed run: 160 MHz, light sleep, radio connecting then connected, 80 MHz
    b.power.radio(powerstate.R_CONNECTING)
    clk.advance_to(clk.now_us + 2000000)
    b.power.radio(powerstate.R_CONNECTED_MIN)
    clk.advance_to(clk.now_us + 60000000)
    b.power.cpu_awake(80)
    clk.advance_to(clk.now_us + 30000000)
    for _ in range(3000):  # FIFO samples read at 80 MHz: their work comes out of light sleep
        b.power.sample()
    b.power.cpu_sleep(powerstate.LIGHT)
    clk.advance_to(clk.now_us + 10000000)
    b.power.cpu_awake(80)
    report = b.power.report()
    e = model.energy(report, 500)
    assert e["cpu_work_ms"] > 100  # the work is in the account
    assert cell.drawn_mah() == pytest.approx(e["avg_current_ma"] * report["run_ms"] / 3600000, rel=1e-3)
    assert cell.pct() == pytest.approx(100 - 100 * cell.drawn_mah() / 500)
