"""Helpers for device-logic tests, which run unchanged under pytest
(CPython + shims) and on both MicroPython VMs (tools/vm/mprunner.py).

A device test module is a file host_tests/device/test_*.py with plain
`def test_*():` functions and bare asserts; it may import only what the
ESP32 firmware has, the shims, lib/, firmware/ and this module. Each test
gets a fresh simulated node (simboard.new_board()).
"""
import sys

RUNTIME = "cpython"
if sys.implementation.name == "micropython":
    RUNTIME = "wasm" if sys.platform == "webassembly" else "unix"
ON_MICROPYTHON = RUNTIME != "cpython"


class Skipped(Exception):
    pass


def skip(reason):
    if not ON_MICROPYTHON:
        import pytest
        pytest.skip(reason)
    raise Skipped(reason)


def need(module):
    """Skip unless `module` imports here (e.g. socket: unix VM only)."""
    try:
        return __import__(module)
    except ImportError:
        skip("needs %s, which %s lacks" % (module, RUNTIME))


def raises(exc, fn, *args, **kw):
    """Call fn and return the exception of type exc it raised."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%r did not raise %r" % (fn, exc))


def alloc_bytes(fn):
    """Heap bytes fn() allocates, measured on MicroPython (call it once
    before to warm up). GC is held off so the delta is what was allocated."""
    if not ON_MICROPYTHON:
        skip("heap allocation is measured on the MicroPython VMs")
    import gc
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        fn()
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def assert_no_alloc(fn):
    """fn() must not touch the heap: run it with the heap locked."""
    if not ON_MICROPYTHON:
        skip("heap_lock is enforced on the MicroPython VMs")
    import micropython
    micropython.heap_lock()
    try:
        fn()
    except MemoryError:
        micropython.heap_unlock()
        raise AssertionError("allocated on the heap while it was locked")
    except BaseException:
        micropython.heap_unlock()
        raise
    micropython.heap_unlock()
