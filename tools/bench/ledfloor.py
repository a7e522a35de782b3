"""What the LED floor (firmware/detect.py, config power.led_floor) does to
the LEDs' current and to SpO2, by the perfusion of the finger: the node's
own sampler and detector (firmware.sensor's configuration) on the
simulated MAX86150 with a synthetic 75/min pulse at SpO2 97 %, each
perfusion index (AC/DC of the IR light, %) with the floor on and off.
CPython with the simulator's shims (the firmware's outputs are bit-exact
across runtimes; this is a behaviour, not a timing).

    from tools.bench import ledfloor
    ledfloor.run()   # {pi: {"on": {...}, "off": {...}}}
"""
from tools import hostshims

PIS = (0.25, 0.5, 1.0, 2.0, 5.0)  # %: low perfusion to a warm finger
SETTLE_S = 60  # the LEDs settle (and SpO2 learns) before the average starts
AVG_S = 60


def one(pi, floor):
    """{led_ma, spo2_x10, spo2_valid_share, led_changes} of one finger."""
    hostshims.install()
    import time

    import simboard
    import simmax
    import waveforms

    from firmware import sensor
    from firmware.detect import Detect
    from tools.power import model
    board = simboard.new_board()
    simmax.attach(simmax.SimMAX86150(
        int_pin=simmax.INT, ecg=waveforms.Table(waveforms.ecg_beat(75, 360), 360),
        pleth=waveforms.Table(waveforms.ppg_beat(75, 125), 125), optics=waveforms.Optics(97.0, pi)))
    smp, _ = sensor.start()
    det = Detect(smp, led_floor=floor)
    valid = []
    before = None
    for second in range(SETTLE_S + AVG_S):
        if second == SETTLE_S:  # the LEDs' charge so far (the board's power meter)
            before = board.power.report()
        end = time.ticks_add(time.ticks_ms(), 1000)
        while time.ticks_diff(end, time.ticks_ms()) > 0:
            if smp.due():
                smp.service()
                det.service()
            time.sleep_ms(10)
        if second >= SETTLE_S:
            valid.append(det.spo2_valid)
    # the mean over the last AVG_S: each slot's charge since, priced as tools/power prices it
    after = board.power.report()
    leds = before["led"]
    ma_ms = 0.0
    for i, (pw, pps, ua_ms, _) in enumerate(after["led"]):
        ma_ms += model.led_ma(ua_ms - (leds[i][2] if i < len(leds) else 0), 0, pw, pps)
    return {"led_ma": round(ma_ms / (after["run_ms"] - before["run_ms"]), 3), "spo2_x10": det.spo2_x10,
            "spo2_valid_share": round(sum(valid) / len(valid), 2), "led_changes": smp.led_changes}


def run():
    return {pi: {"on": one(pi, True), "off": one(pi, False)} for pi in PIS}
