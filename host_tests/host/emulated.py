"""The emulated USB board (tools/emu) as host tests drive it: start it on a
flash directory, talk to it with the real mpremote, reset it, stop it."""
import json
import os
import signal
import subprocess
import sys
import time

from tools.paths import ROOT, venv_tool


class Emu:
    def __init__(self, flash, tap=None, sysname=None, speed=None):
        """tap: a file that receives every byte the board sends;
        sysname: what the board's os.uname() reports (default esp32);
        speed: the firmware's sleeps pass this many times faster."""
        self.flash = flash
        self.tap = tap
        env = dict(os.environ)
        if tap:
            env["VITALNODE_EMU_TAP"] = str(tap)
        if sysname:
            env["VITALNODE_EMU_SYSNAME"] = sysname
        if speed:
            env["VITALNODE_EMU_SPEED"] = str(speed)
        self.proc = subprocess.Popen([sys.executable, "-m", "tools.emu", "--flash", str(flash)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, env=env)
        self.pty = self.proc.stdout.readline().strip()
        assert self.pty.startswith("/dev/"), self.pty

    def mpremote(self, *args, check=True):
        r = subprocess.run([venv_tool("mpremote"), "connect", self.pty, *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    def nvs(self, namespace):
        """The board's committed NVS namespace {key: value}."""
        st = json.loads((self.flash / "state.json").read_text())
        return {k: v[1] for k, v in st["nvs"].get(namespace, {}).items()}

    def ota_state(self):
        """stage0's OTA state record, decoded ({} before one was written)."""
        import stage0
        from nvsrec import decode
        raw = self.nvs(stage0.NS)
        vals = decode(stage0.FMT, [bytes.fromhex(raw[k]) for k in (stage0.RECORD + "0",
                                                                   stage0.RECORD + "1")
                                   if k in raw])
        return dict(zip(stage0._KEYS, vals)) if vals else {}

    def boots(self):
        st = json.loads((self.flash / "state.json").read_text())["emu"]
        return st["boots"], st["last_boot"]

    def reset(self):
        """`mpremote reset` runs sleep_ms(100); machine.reset() and leaves;
        wait until the board has rebooted (the emulator records each boot in
        its state file) so the next command's Ctrl-C cannot land inside that
        100 ms, as it could on a real board."""
        before = self.boots()[0]
        self.mpremote("reset")
        deadline = time.monotonic() + 20
        while True:
            n, kind = self.boots()
            if n > before and kind == "hard":
                return
            assert time.monotonic() < deadline, "board did not reboot"
            time.sleep(0.02)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
