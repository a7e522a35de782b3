"""The firmware version this tree builds: `make ota-bundle` signs it into a
bundle's manifest and `make deploy` records it as the confirmed slot's
version (OTA refuses anything not newer)."""
VERSION = "0.6.0"


def code(text=VERSION):
    """'X.Y.Z' (each 0..999) -> X*10^6 + Y*10^3 + Z (the number OTA and
    telemetry compare and send); ValueError if it is not that form."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 3:
        raise ValueError("version must be X.Y.Z")
    n = 0
    for p in parts:
        if not p or len(p) > 3 or any(c not in "0123456789" for c in p):  # ASCII digits only
            raise ValueError("version must be X.Y.Z with numbers 0-999")
        n = n * 1000 + int(p)
    return n
