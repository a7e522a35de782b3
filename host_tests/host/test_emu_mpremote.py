"""The emulated USB device answers the real mpremote as a board would."""
import pytest

from emulated import Emu
from tools.paths import ROOT, device_files


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path / "flash")
    yield e
    e.stop()


def test_exec_prints_the_result(emu):
    assert emu.mpremote("exec", "print(1+1)").stdout.strip() == "2"


def test_fs_cp_roundtrips_binary_and_ls_cat_report_like_a_board(emu, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 40)  # 10 KiB, every byte value
    emu.mpremote("fs", "mkdir", ":data")
    emu.mpremote("fs", "cp", str(src), ":data/blob.bin")
    back = tmp_path / "back.bin"
    emu.mpremote("fs", "cp", ":data/blob.bin", str(back))
    assert back.read_bytes() == src.read_bytes()
    ls = emu.mpremote("fs", "ls", ":data").stdout
    assert "blob.bin" in ls
    r = emu.mpremote("fs", "cat", ":missing.txt", check=False)
    assert r.returncode != 0 and "No such file or directory" in (r.stdout + r.stderr)
    # the board's flash is a directory on the host, kept across restarts
    assert (emu.flash / "fs" / "data" / "blob.bin").read_bytes() == src.read_bytes()


def test_run_executes_a_local_script_on_the_device(emu, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('on', sys.implementation.name, 6 * 7)\n")
    assert emu.mpremote("run", str(script)).stdout.strip() == "on micropython 42"


def test_nvs_survives_soft_reset_reset_and_emulator_restart(tmp_path):
    e = Emu(tmp_path / "flash")
    try:
        e.mpremote("exec", "import esp32; n = esp32.NVS('vn'); n.set_i32('a', 41); n.commit();"
                   " n.set_i32('b', 1)")  # b is not committed: ESP-IDF writes it anyway
        e.mpremote("soft-reset")
        out = e.mpremote("exec", "import esp32, machine\nn = esp32.NVS('vn')\n"
                         "try:\n n.get_i32('b'); print('b kept')\nexcept OSError: print('b lost')\n"
                         "print(n.get_i32('a'), machine.reset_cause())").stdout.split()
        assert out == ["b", "kept", "41", "5"]  # SOFT_RESET until the next chip reset
        uid = e.mpremote("exec", "import machine; print(machine.unique_id().hex())").stdout
        e.reset()
        # 'resume': mpremote's first command otherwise soft-resets (cause 5 again)
        out = e.mpremote("resume", "exec", "import machine; print(machine.reset_cause())").stdout
        assert out.strip() == "2"  # machine.reset() is esp_restart(): HARD_RESET
    finally:
        e.stop()
    e = Emu(tmp_path / "flash")
    try:
        out = e.mpremote("exec", "import esp32, machine\n"
                         "print(esp32.NVS('vn').get_i32('a'), machine.unique_id().hex())").stdout
        assert out.split() == ["41", uid.strip()]
    finally:
        e.stop()


def test_deployed_firmware_boots_on_reset_and_ctrl_c_reaches_the_prompt(emu):
    args = ["fs", "mkdir", ":firmware", "+", "fs", "mkdir", ":lib"]
    subdirs = sorted({f.relative_to(ROOT).parent.as_posix() for f in device_files()} - {".", "firmware", "lib"})
    for d in subdirs:  # lib/umqtt (fetched by make deps)
        args += ["+", "fs", "mkdir", ":" + d]
    for f in device_files():  # the whole device tree, as `make deploy` will copy it
        args += ["+", "fs", "cp", str(f), ":" + f.relative_to(ROOT).as_posix()]
    emu.mpremote(*args)
    emu.reset()
    # main.py is now looping (firmware sleeps in real time); mpremote's
    # Ctrl-C interrupts it ('resume': no soft reset, so the app's state is
    # still there) and the watchdog it started proves it ran
    out = emu.mpremote("resume", "exec",
                       "import simboard, machine\n"
                       "print(simboard.board.wdt is not None, machine.reset_cause())").stdout
    assert out.split() == ["True", "2"]  # machine.reset(): HARD_RESET
