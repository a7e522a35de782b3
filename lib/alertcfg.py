"""Alert thresholds: their defaults, accepted ranges and validation
(lib/alerts.py uses them while building an Alerts; firmware/config.py
checks config.json's "alerts" with them). Kept apart so that a running
node does not hold them in its heap.

    from alertcfg import check, DEFAULTS
    t = check({"hr_low": 45})      # a full, validated copy; ValueError naming a bad one
"""

DEFAULTS = {
    "hr_low": 40, "hr_high": 150, "hr_hyst": 5, "hr_on_s": 10,
    "spo2_low": 90, "spo2_hyst": 2, "spo2_on_s": 15,
    "asystole_s": 4,
    "lead_off_on_s": 5, "finger_off_on_s": 5, "sensor_fault_on_s": 5,
    "vf_on_s": 0, "af_on_s": 30,
    "clear_s": 5,
}
# name, min, max accepted for each threshold (one flat tuple: small in RAM)
_LIMITS = (
    "hr_low", 20, 100, "hr_high", 80, 250, "hr_hyst", 0, 20, "hr_on_s", 0, 120,
    "spo2_low", 70, 98, "spo2_hyst", 0, 10, "spo2_on_s", 0, 120,
    "asystole_s", 2, 20,
    "lead_off_on_s", 0, 120, "finger_off_on_s", 0, 120, "sensor_fault_on_s", 0, 120,
    "vf_on_s", 0, 10, "af_on_s", 0, 600,
    "clear_s", 0, 120,
)


def check(thresholds):
    """Validated copy of DEFAULTS updated with `thresholds`."""
    t = dict(DEFAULTS)
    for k in thresholds or {}:
        i = 0
        while i < len(_LIMITS) and _LIMITS[i] != k:
            i += 3
        if i >= len(_LIMITS):
            raise ValueError("alerts: unknown threshold %r" % (k,))
        v = thresholds[k]
        lo = _LIMITS[i + 1]
        hi = _LIMITS[i + 2]
        # _LIMITS is one flat tuple (name, lo, hi, ...) to keep the node's heap
        # small: its element type mixes str and int, lo and hi are the ints
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:  # pyright: ignore[reportOperatorIssue]
            raise ValueError("alerts: %s must be an integer %d..%d, got %r" % (k, lo, hi, v))
        t[k] = v
    if t["hr_low"] + t["hr_hyst"] >= t["hr_high"] - t["hr_hyst"]:
        raise ValueError("alerts: hr_low + hr_hyst must stay below hr_high - hr_hyst")
    return t
