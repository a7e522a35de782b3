"""Device code for the host tools that run in production (the gateway,
the broker's set-up, provisioning, the OTA tools): the repository root and
lib/ on sys.path, so that `firmware.frames`, `firmware.config`,
`firmware.otamanifest` and the lib/ modules they use import on CPython, and
the one MicroPython name those modules need to load, micropython.const.

Guarantees: nothing simulated is made importable - no `machine`, `esp32`,
`network`, virtual clock or board (tools/shims stays off sys.path) - and
CPython's `time` is left as it is. A device module that needs the chip
fails to import here, as it should in a production tool. Non-guarantee:
the repository's root and lib/ names come before installed packages.
Tests and the simulator use tools/hostshims.py instead, which replaces
this module's `micropython` with the shims' fuller one.

    from tools import devicecode
    devicecode.install()
    from firmware import frames
"""
import sys
import types

from tools.paths import LIB, ROOT


def _const(x):
    return x


def install():
    for p in (str(LIB), str(ROOT)):  # ROOT first, as on the chip: / then /lib
        if p not in sys.path:
            sys.path.insert(0, p)
    if "micropython" not in sys.modules:
        try:
            import micropython  # noqa: F401 - the test shims', when they are on the path
        except ImportError:
            m = types.ModuleType("micropython", "micropython.const for device code on CPython "
                                 "(tools/devicecode.py)")
            m.const = _const
            m.VITALNODE_MINIMAL = True
            sys.modules["micropython"] = m
