"""The device id's one form: the chip's MAC (machine.unique_id(), the
ESP32's Wi-Fi MAC) as 12 lower-case hex digits - no service login name
(gateway, operator), MQTT wildcard, topic or path separator, NUL or
upper-case twin passes.

    from firmware import devid
    why = devid.why_not(text)   # None: a device id; else the reason

firmware/config.check_device_id (the node's own id; the host's
provisioning, registry and broker through it) and firmware/otamanifest (a
bound manifest's device list) use it. A module of its own so that checking
a bound manifest during a download does not load config's code (~6 KB of a
deployed node's heap).
"""
from micropython import const

LEN = const(12)
_HEX = "0123456789abcdef"


def why_not(did):
    """None if `did` is a device id, else why it is not (allocates only then)."""
    if isinstance(did, str) and len(did) == LEN:
        for c in did:
            if c not in _HEX:
                break
        else:
            return None
    return "must be the chip's MAC as %d lower-case hex digits, got %r" % (LEN, did)
