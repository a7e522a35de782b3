"""Wall time for the node: Unix seconds from the RTC once NTP set it.

    from firmware.clock import now_unix
    t = now_unix()      # 0 while the RTC was never set (year < 2024)

Its own small module because OTA (expiry) and telemetry (frame time) both
need it, and telemetry must not pull the OTA installer into the heap.
"""


def now_unix():
    """Wall time from the RTC (set by NTP), or 0 if it was never set."""
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
