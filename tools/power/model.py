"""Energy = sum of current x time: a simulated node's state times
(tools/shims/powerstate.py report, plus simnet's bytes) priced with the
current table (tools/power/table.py).

    e = model.energy(node_summary["power"], capacity_mah=500)
    e["avg_current_ma"], e["battery_hours"], e["current_ma_by_state"], e["shares"]

Rails (their currents add up: linear regulators, docs/power.md):
- ESP32 CPU: awake at its clock rate, light sleep or deep sleep;
- ESP32 radio: its add-on over the CPU rail per state; while connected,
  airtime (bytes x 8 / the stated PHY rate) is priced at the TX or RX
  figure instead of the connected state's;
- sensor: PPG core and ECG front end when on, shutdown current when both
  are off, and the LEDs' average drive (amplitude x width x pulses/s).
Guarantee: a report whose rails do not each add up to the run raises
AccountingError, so a figure is never priced from a partial account.
Non-guarantees: battery_hours is capacity / average current - no derating
for the cell's usable capacity, temperature or ageing, no regulator
quiescent current or efficiency; airtime counts payload bytes only.
"""
from tools.power import table

CAPACITY_MAH = 500  # issue 20's reference cell
_TOL_MS = 1.0  # state sums are floats in ms


class AccountingError(ValueError):
    pass


def check(power):
    """The CPU and radio rails each cover the run; the sensor rail covers it
    from the chip's attachment (never more)."""
    st = power["states_ms"]
    run = power["run_ms"]
    cpu = sum(v for k, v in st.items() if not k.startswith("wifi_"))
    radio = sum(v for k, v in st.items() if k.startswith("wifi_"))
    for name, total in (("cpu", cpu), ("radio", radio)):
        if abs(total - run) > _TOL_MS:
            raise AccountingError("%s states add up to %.1f ms, the run is %.1f ms"
                                  % (name, total, run))
    if power.get("sensor_part"):
        on = max(power["ppg_on_ms"], power["ecg_on_ms"])
        if on + power["sensor_off_ms"] > run + _TOL_MS:
            raise AccountingError("sensor states exceed the run")
        if sum(slot[3] for slot in power["led"]) > power["ppg_on_ms"] + _TOL_MS:
            raise AccountingError("LEDs lit longer than the PPG core was on")


def led_ma(ir_ua, red_ua, pw_us, pulses_per_s):
    """Average LED current (mA) of one register configuration: amplitude x
    pulse width x pulses per second, per lit LED. (With amplitudes in uA x ms
    it is the charge in mA x ms.)"""
    return (ir_ua + red_ua) / 1000.0 * pw_us * 1e-6 * pulses_per_s


def airtime_ms(nbytes, mbit_s=table.PHY_MBIT_S):
    return nbytes * 8 / (mbit_s * 1000.0)


# the radio's states (powerstate.RADIO_STATES, in order) and their rows of the table
_RADIO_ROWS = {"wifi_off": None, "wifi_on_idle": table.WIFI_ON_IDLE,
               "wifi_connecting": table.WIFI_CONNECT, "wifi_connected_ps_none": table.WIFI_PS_NONE,
               "wifi_connected_ps_min_modem": table.WIFI_PS_MIN,
               "wifi_connected_ps_max_modem": table.WIFI_PS_MAX}


def prices(part=None, factor="mid"):
    """What energy() charges per state, flat, for the simulated battery
    (tools/shims/simbattery.py) to drain by: cpu [mA per powerstate.CPU_STATES],
    radio [add-on mA per RADIO_STATES], tx / rx add-on mA for airtime at
    phy_mbit_s, work_us [us of the CPU's work per FIFO sample at each awake
    clock, as _work() prices it], and the sensor part's ppg / ecg / shutdown mA."""
    p = {"cpu": [table.ESP32_CPU[m]["ma"] for m in (20, 40, 80, 160, 240)]
         + [table.ESP32_LIGHT_SLEEP["ma"], table.ESP32_DEEP_SLEEP["ma"]],
         "radio": [0.0 if r is None else table.radio_addon_ma(r) for r in _RADIO_ROWS.values()],
         "tx": table.radio_addon_ma(table.WIFI_TX), "rx": table.radio_addon_ma(table.WIFI_RX),
         "phy_mbit_s": table.PHY_MBIT_S,
         "work_us": [table.work_us_per_sample(m, factor) for m in (20, 40, 80, 160, 240)]}
    if part:
        chip = table.SENSOR[part]
        p.update(ppg=chip["ppg"]["ma"], shutdown=chip["shutdown"]["ma"])
        if "ecg" in chip:
            p["ecg"] = chip["ecg"]["ma"]
    return p


def _charges(st, tx_bytes, rx_bytes, part, ppg_ms, ecg_ms, off_ms, led_ma_ms):
    """{state: charge in mA x ms} of state times `st` (ms), the bytes sent
    and received, the sensor's on/off times and the LEDs' charge."""
    charge = {}
    for mhz, row in table.ESP32_CPU.items():
        charge["cpu_%dmhz" % mhz] = row["ma"] * st["cpu_%dmhz" % mhz]
    charge["light_sleep"] = table.ESP32_LIGHT_SLEEP["ma"] * st["light_sleep"]
    charge["deep_sleep"] = table.ESP32_DEEP_SLEEP["ma"] * st["deep_sleep"]
    # the radio: airtime comes out of the connected states, in proportion
    connected = ("wifi_connected_ps_none", "wifi_connected_ps_min_modem",
                 "wifi_connected_ps_max_modem")
    t_conn = sum(st[k] for k in connected)
    tx = airtime_ms(tx_bytes)
    rx = airtime_ms(rx_bytes)
    air = tx + rx
    if air > t_conn:  # cannot happen on the wire; keep the account whole
        tx, rx = (tx * t_conn / air, rx * t_conn / air) if air else (0.0, 0.0)
        air = t_conn
    keep = 1.0 - air / t_conn if t_conn else 0.0
    for k, row in _RADIO_ROWS.items():
        t = st[k] * (keep if k in connected else 1.0)
        charge[k] = 0.0 if row is None else table.radio_addon_ma(row) * t
    charge["wifi_tx"] = table.radio_addon_ma(table.WIFI_TX) * tx
    charge["wifi_rx"] = table.radio_addon_ma(table.WIFI_RX) * rx
    # the sensor
    if part:
        chip = table.SENSOR[part]
        charge["sensor_ppg"] = chip["ppg"]["ma"] * ppg_ms
        if "ecg" in chip:
            charge["sensor_ecg"] = chip["ecg"]["ma"] * ecg_ms
        charge["sensor_shutdown"] = chip["shutdown"]["ma"] * off_ms
        charge["sensor_leds"] = led_ma_ms
    return charge, tx, rx


def _work(st, samples, factor="mid"):
    """State times with the CPU's work (no virtual time in the simulation)
    moved out of light sleep into the awake state at the clock of the reads:
    samples {cpu state: count} x table.work_us_per_sample; an always-awake
    CPU did it within its awake time. Returns (state times, work ms)."""
    st = dict(st)
    work_ms = 0.0
    for k, n in samples.items():
        w = min(n * table.work_us_per_sample(int(k[4:-3]), factor) / 1000.0, st["light_sleep"])
        st["light_sleep"] -= w
        st[k] += w
        work_ms += w
    return st, work_ms


def energy(power, capacity_mah=CAPACITY_MAH, factor="mid"):
    """{avg_current_ma, battery_hours, current_ma_by_state, shares, ...} of
    one node's power report (node summary["power"]); factor: the ESP32 speed
    estimate the CPU's work is priced at (table.ESP32_FACTOR)."""
    check(power)
    run = power["run_ms"]
    if run <= 0:
        raise AccountingError("an empty run")
    st, work_ms = _work(power["states_ms"], power.get("work_samples", {}), factor)
    part = power.get("sensor_part")
    # per LED slot [pulse width us, pulses/s, lit amplitudes x time (uA x ms), lit ms]
    leds = sum(led_ma(ua_ms, 0, pw, pps) for pw, pps, ua_ms, _ in power["led"]) if part else 0.0
    charge, tx, rx = _charges(st, power.get("tx_bytes", 0), power.get("rx_bytes", 0), part,
                              power.get("ppg_on_ms", 0), power.get("ecg_on_ms", 0),
                              power.get("sensor_off_ms", 0), leds)
    total = sum(charge.values())
    avg = total / run
    by_state = {k: round(v / run, 4) for k, v in charge.items() if v}
    shares = {k: round(v / total, 4) for k, v in charge.items() if v} if total else {}
    return {"avg_current_ma": round(avg, 2),
            "battery_hours": round(capacity_mah / avg, 2) if avg else None,
            "capacity_mah": capacity_mah, "current_ma_by_state": by_state, "shares": shares,
            "airtime_ms": {"tx": round(tx, 1), "rx": round(rx, 1)}, "phy": table.PHY,
            "states_ms": st, "run_ms": run, "cpu_work_ms": round(work_ms, 1),
            "esp32_factor": table.ESP32_FACTOR[factor]}


_CPU_STATES = tuple("cpu_%dmhz" % m for m in (20, 40, 80, 160, 240)) + ("light_sleep", "deep_sleep")
_RADIO_STATES = ("wifi_off", "wifi_on_idle", "wifi_connecting", "wifi_connected_ps_none",
                 "wifi_connected_ps_min_modem", "wifi_connected_ps_max_modem")


def timeline(power):
    """Supply current over time from a power report's timeline (the meter's
    bins: tools/shims/powerstate.py), each bin priced as energy() prices
    the run: [(start s, length s, mA)], start from the run's start. None
    without a timeline. Raises AccountingError if a bin's CPU and radio
    rails do not cover the same time (a bin priced from a partial account)."""
    tl = power.get("timeline")
    if not tl:
        return None
    cols = tl["cols"]
    n = tl["bins"]
    zeros = [0] * n

    def col(name):
        return cols.get(name, zeros)
    part = power.get("sensor_part")
    t = tl["t0_ms"] / 1000.0
    out = []
    for i in range(n):
        st = {k: col(k)[i] / 1000.0 for k in _CPU_STATES + _RADIO_STATES}  # us -> ms
        span = sum(st[k] for k in _CPU_STATES)
        radio = sum(st[k] for k in _RADIO_STATES)
        if abs(span - radio) > 0.001:
            raise AccountingError("timeline bin %d: CPU rail %.3f ms, radio rail %.3f ms"
                                  % (i, span, radio))
        if span <= 0:
            continue
        if col("work_samples")[i]:  # priced at the clock the CPU was awake at most
            awake = max(_CPU_STATES[:5], key=lambda k: st[k])
            st, _ = _work(st, {awake: col("work_samples")[i]})
        charge, _, _ = _charges(st, col("tx_bytes")[i], col("rx_bytes")[i], part,
                                col("ppg_on_us")[i] / 1000.0, col("ecg_on_us")[i] / 1000.0,
                                col("sensor_off_us")[i] / 1000.0, col("led_ua_s")[i])  # uA s = mA ms
        out.append((round(t, 3), span / 1000.0, round(sum(charge.values()) / span, 3)))
        t += span / 1000.0
    return out


def mean_ma(points):
    """The time-weighted mean current (mA) of timeline() points."""
    span = sum(p[1] for p in points)
    return sum(p[1] * p[2] for p in points) / span if span else None


def sim_report(per, results, devices, capacity_mah=CAPACITY_MAH):
    """`make sim`: each node's energy into its per_node entry; the summary's
    avg_current_ma / battery_hours / current_shares are the nodes' mean (one
    node: its own). Nodes without a power report (none today) are skipped."""
    figs = []
    for p, dev in zip(per, devices):
        pw = results[dev].get("power")
        if pw is None:
            continue
        p["power"] = energy(pw, capacity_mah)
        figs.append(p["power"])
    if not figs:
        return {}
    avg = sum(f["avg_current_ma"] for f in figs) / len(figs)
    states = sorted({k for f in figs for k in f["current_ma_by_state"]})
    by_state = {k: sum(f["current_ma_by_state"].get(k, 0.0) for f in figs) / len(figs)
                for k in states}
    tot = sum(by_state.values())
    return {"avg_current_ma": round(avg, 2),
            "battery_hours": round(capacity_mah / avg, 2) if avg else None,
            "capacity_mah": capacity_mah,
            "current_shares": {k: round(v / tot, 4) for k, v in by_state.items()} if tot else {},
            "current_ma_by_state": {k: round(v, 3) for k, v in by_state.items()}}


def summary_line(s):
    """One line for `make sim`'s printout."""
    if "avg_current_ma" not in s:
        return "  power: no power report from the node(s)"
    top = sorted(s["current_shares"].items(), key=lambda kv: -kv[1])[:4]
    return ("  power: %.1f mA average -> %.1f h on a %d mAh cell; where it goes: %s "
            "(docs/power.md)" % (s["avg_current_ma"], s["battery_hours"], s["capacity_mah"],
                                 ", ".join("%s %.0f %%" % (k, 100 * v) for k, v in top)))
