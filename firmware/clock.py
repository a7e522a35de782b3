"""Wall time for the node: Unix seconds from the RTC, which only the
gateway's authenticated acknowledgements set (sync).

    from firmware.clock import now_unix
    t = now_unix()      # 0 while the RTC was never set (year < 2024)
    clock.sync(gw_t, rtt_ms)   # an authentic ack's time, its frame sent rtt_ms ago

Its own small module because OTA (expiry), telemetry (frame time) and the
trial's confirm all need it, and telemetry must not pull the OTA
installer into the heap.

Guarantees: the RTC is set only from a time the gateway signed with this
node's telemetry sub-key (frames.ack_time), for a frame first published
at most RTT_MAX_MS before its acknowledgement arrived, so the clock is
within 1 s + RTT_MAX_MS / 2 of the gateway's; an unset clock reads 0 and
frames then carry the boot number instead. The ESP32 keeps the RTC
through soft and watchdog resets and deep sleep, not through a power-on
reset (the sim's board: simboard.reset).
Non-guarantees: the gateway's clock is the reference (keep it on NTP);
an acknowledgement a broker held back longer than RTT_MAX_MS is not used
at all, one it held back less can err by that delay.
"""
from micropython import const

RTT_MAX_MS = const(10000)  # round trip beyond which an acknowledgement's time is not taken
SKEW_S = const(300)  # how far past trusted time an OTA manifest's `created` may lie
_MIN = const(1704067200)  # 2024-01-01: a gateway time before it is no time
_STEP_S = const(2)  # the RTC is moved only when it is off by at least this much


def now_unix():
    """Wall time from the RTC, or 0 if it was never set."""
    import machine
    y, mo, d, _, h, mi, s, _ = machine.RTC().datetime()
    if y < 2024:
        return 0
    y2 = y - 1 if mo <= 2 else y  # days from civil (proleptic Gregorian)
    era = y2 // 400
    yoe = y2 - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + h * 3600 + mi * 60 + s


def sync(t, rtt_ms):
    """Set the RTC from gateway time t (Unix s, from an authentic
    acknowledgement of a frame first published rtt_ms ago). True if the
    clock was set or already agreed; False if the time is not usable."""
    if t < _MIN or not 0 <= rtt_ms <= RTT_MAX_MS:
        return False
    t += (rtt_ms + 500) // 2000  # the gateway answered within the round trip: its middle
    now = now_unix()
    if now and -_STEP_S < now - t < _STEP_S:
        return True  # agrees within the acknowledgement's resolution: leave the RTC alone
    import machine
    days, s = divmod(t, 86400)
    z = days + 719468  # civil from days, proleptic Gregorian (now_unix's inverse)
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    mo = mp + 3 if mp < 10 else mp - 9
    machine.RTC().datetime((era * 400 + yoe + (mo <= 2), mo, doy - (153 * mp + 2) // 5 + 1,
                            (days + 3) % 7, s // 3600, s // 60 % 60, s % 60, 0))
    return True
