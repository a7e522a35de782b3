"""The compile and VM layers must fail on code that would break on the chip."""
import subprocess
import sys

import pytest

from tools.paths import DEVICE_TESTS, ROOT

BAD_MODULES = {
    "cpython_stdlib.py": ("import functools\n", "functools"),
    "match_stmt.py": ("def f(x):\n    match x:\n        case 1:\n            return 1\n", "mpy-cross"),
    "typing_import.py": ("from typing import List\n", "typing"),
    "wall_clock.py": ("import time\n\ndef f():\n    time.sleep(1)\n", "time.sleep"),
    "logging_import.py": ("import logging\n", "logging"),
    # frozen in the stock ESP32 firmware but not by our manifest.py: a
    # FROZEN=1 build would not have it
    "stock_only.py": ("import socket\n\ndef f():\n    import ntptime\n", "'ntptime'"),
    "asyncio_import.py": ("import asyncio\n", "'asyncio'"),
    "unix_only.py": ("import termios\n", "'termios'"),
}


# what only the lint half of the compile layer (--lint: ruff, pyright
# against MicroPython 1.27's ESP32 stubs) finds; mpy-cross compiles both
LINT_MODULES = {  # name: (source, line, what the finding says)
    "undefined_name.py": ("def f():\n    return undefined_thing\n", 2, "ruff F821"),
    # CPython's time has no sleep_ms: only the MicroPython stubs know its
    # parameter, so this finding shows pyright reads them
    "mp_types.py": ("import time\n\n\ndef f():\n    time.sleep_ms('5')\n", 5,
                    'pyright Argument of type "Literal[\'5\']" cannot be assigned to parameter "ms"'),
    "unbound.py": ("def f(x=None):\n    if x:\n        y = 1\n    return y\n", 4,
                   'pyright "y" is possibly unbound'),
}


def _compile(path, *opts):
    return subprocess.run([sys.executable, "-m", "tools.compile_check", "--out",
                           str(path.parent / "mpy"), *opts, str(path)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("name", sorted(BAD_MODULES))
def test_compile_layer_rejects_with_file_and_line(tmp_path, name):
    src, needle = BAD_MODULES[name]
    f = tmp_path / name
    f.write_text(src)
    r = _compile(f)
    assert r.returncode == 1, r.stdout
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(name + ":")]
    assert line and needle in line[0], r.stdout
    assert int(line[0].split(":")[1]) >= 1
    assert "compile: 0 passed, 1 failed" in r.stdout


def test_compile_layer_accepts_plain_micropython(tmp_path):
    f = tmp_path / "fine.py"
    f.write_text("import time\nfrom micropython import const\n_N = const(3)\n\n"
                 "def f():\n    time.sleep_ms(_N)\n")
    r = _compile(f)
    assert r.returncode == 0 and "compile: 1 passed, 0 failed" in r.stdout
    assert (tmp_path / "mpy").exists()
    r = _compile(f, "--lint")  # the file, ruff, pyright
    assert r.returncode == 0 and "compile: 3 passed, 0 failed" in r.stdout, r.stdout


@pytest.mark.parametrize("name", sorted(LINT_MODULES))
def test_compile_layers_lint_rejects_with_file_and_line(tmp_path, name):
    src, lineno, needle = LINT_MODULES[name]
    f = tmp_path / name
    f.write_text(src)
    assert _compile(f).returncode == 0  # MicroPython compiles it
    r = _compile(f, "--lint")
    assert r.returncode == 1, r.stdout
    assert "%s:%d: %s" % (f, lineno, needle) in r.stdout, r.stdout



def test_vm_layers_fail_a_test_that_leans_on_a_cpython_only_module(tmp_path):
    (tmp_path / "devtest.py").write_text((DEVICE_TESTS / "devtest.py").read_text())
    (tmp_path / "test_leans_on_functools.py").write_text(
        "def test_uses_functools():\n    import functools\n    assert functools.reduce\n\n"
        "def test_uses_defaultdict():\n    from collections import defaultdict\n\n"
        "def test_fine():\n    import hashlib\n    assert hashlib.sha256(b'').digest()\n")
    r = subprocess.run([sys.executable, "-m", "tools.vmtest", "--vm", "all", "--dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    assert "frozen: 1 passed, 2 failed, 0 skipped" in r.stdout, r.stdout
    assert "unix: 1 passed, 2 failed, 0 skipped" in r.stdout, r.stdout
    assert "not in the ESP32 firmware" in r.stdout


def test_repo_device_tree_compiles_for_xtensawin(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.compile_check", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert (tmp_path / "firmware/app.mpy").read_bytes()[:2] == b"M\x06"  # .mpy v6


def test_the_chips_module_set_is_derived_from_the_1_27_sources():
    """Built-in modules come from the release's registrations under the
    ESP32 config; frozen ones from the manifests, by MicroPython's tool."""
    from tools.vm import esp32_modules as m
    b = m.builtin()
    assert {"esp32", "network", "machine", "tls", "hashlib", "socket", "btree", "bluetooth",
            "_thread", "vfs", "cryptolib", "deflate"} <= b
    assert not {"termios", "ffi", "jni", "ssl", "lwip", "openamp", "time_", "uos"} & b
    assert {"ssl", "ntptime", "asyncio", "umqtt", "mip", "webrepl", "requests"} <= m.stock_frozen()
    ours = m.our_frozen()
    assert {"ssl", "umqtt", "firmware", "stage0", "qrs", "_boot"} <= ours
    assert not {"ntptime", "asyncio", "mip", "webrepl", "requests"} & ours
    allowed = m.device_allowed()
    assert "ssl" in allowed and "ntptime" not in allowed and "asyncio" not in allowed


def _sim_rom():
    """The shims the sim manifest freezes (its module() calls), and node."""
    import ast
    tree = ast.parse((ROOT / "tools" / "vm" / "sim_manifest.py").read_text())
    loop = next(n for n in ast.walk(tree) if isinstance(n, ast.For))
    return set(ast.literal_eval(loop.iter)) | {"node"}


@pytest.mark.parametrize("vm", ["unix", "frozen"])
def test_every_module_a_test_vm_has_beyond_the_chip_is_hidden(vm):
    """What the 32-bit builds can import and the ESP32 firmware lacks has a
    stub that raises ImportError, so no test can lean on it."""
    from tools.vm import esp32_modules as m
    from tools.vm import launch
    r = subprocess.run([launch.binary(vm), "-c", "help('modules')"], capture_output=True,
                       text=True)
    have = {tok.split("/")[0] for tok in r.stdout.split()} - {
        "Plus", "any", "modules", "on", "the", "filesystem"}
    ours = {p.stem for p in (ROOT / "lib").glob("*.py")} | {"firmware", "stage0", "nvsrec"}
    sim_rom = _sim_rom()
    extra = have - m.device_allowed() - ours - sim_rom
    assert extra and extra <= set(m.HIDDEN), extra - set(m.HIDDEN)
