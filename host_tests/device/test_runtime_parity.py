"""The VMs must not offer what the ESP32 firmware lacks (hidden modules),
and must agree on the integer facts device code depends on."""
from devtest import ON_MICROPYTHON, RUNTIME, raises, skip


def test_modules_missing_on_the_esp32_are_hidden_on_the_vms():
    if not ON_MICROPYTHON:
        skip("CPython has them; the compile layer rejects their import instead")
    for name in ("functools", "itertools", "logging", "unittest", "hmac", "typing", "base64"):
        raises(ImportError, __import__, name)
    import collections
    assert not hasattr(collections, "defaultdict")
    collections.deque((), 4)


def test_esp32_modules_the_firmware_uses_are_present():
    import array
    import binascii
    import hashlib
    import json
    import struct
    h = hashlib.sha256(b"abc").digest()
    assert binascii.hexlify(h)[:8] == b"ba7816bf"
    assert struct.pack("<hI", -2, 7) == b"\xfe\xff\x07\x00\x00\x00"
    assert json.loads('{"a": [1, 2]}') == {"a": [1, 2]}
    assert array.array("h", [1, -1])[1] == -1


def test_runtime_is_identified():
    import sys
    assert RUNTIME in ("cpython", "wasm", "unix")
    if RUNTIME == "wasm":
        assert sys.maxsize == (1 << 31) - 1  # 32-bit like the ESP32
