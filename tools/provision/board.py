"""One session with a node over USB, through mpremote's serial transport
(the library behind the `mpremote` command): the key travels only inside
the raw-REPL command stream - never on a command line, in a file or in a
log - and the node never echoes raw-REPL input.

    with Board(port) as b:
        info = b.probe()             # board, firmware, keystore status
        b.write_file("config.json", text)
        b.run("...")                 # code on the node; its output
"""
import os

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport


class BoardError(Exception):
    pass


def _why_unopenable(port):
    """A clear reason why `port` cannot be opened."""
    if not os.path.exists(port):
        return "no such port %s (is the board plugged in? try `mpremote connect list`)" % port
    import serial
    try:
        s = serial.Serial(port, exclusive=True)
        s.close()
    except serial.SerialException as e:
        text = str(e)
        if "lock" in text.lower() or "busy" in text.lower():
            return ("port busy: another program has %s open (close the serial monitor, "
                    "mpremote or esptool using it)" % port)
        if "ermission" in text:
            return "no permission to open %s (add your user to the dialout group)" % port
        return "cannot open %s: %s" % (port, text)
    return "cannot open %s" % port


def _status(text):
    """keystore.status() as the board printed it, checked for its shape
    (a board's firmware may be anyone's): BoardError if it is not
    {device_id: str, provisioned: bool, gen: int >= 0, lockdown: bool}.
    The device id's form is the caller's check (it names the id)."""
    import ast
    try:
        st = ast.literal_eval(text[:400])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        st = None
    if not (isinstance(st, dict) and set(st) == {"device_id", "provisioned", "gen", "lockdown"}
            and isinstance(st["provisioned"], bool) and isinstance(st["lockdown"], bool)
            and type(st["gen"]) is int and 0 <= st["gen"] < 2 ** 31):
        raise BoardError("the board's firmware reports its status as %r, not as VitalNode "
                         "does: refusing it (nothing was written)" % text[:120])
    return st


class Board:
    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        try:
            # a read timeout: on a pty mpremote reads without checking inWaiting,
            # so a silent (locked) node would otherwise block it forever
            self.t = SerialTransport(port, baudrate=115200, timeout=0.5)
        except TransportError:
            raise BoardError(_why_unopenable(port))
        self._raw = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.t is not None:
            try:
                if self._raw:
                    self.t.exit_raw_repl()
                self.t.close()
            except OSError:
                pass
            self.t = None

    def enter(self, soft_reset=True):
        """Interrupt the firmware and enter the raw REPL (a soft reset
        gives a clean interpreter that re-reads NVS)."""
        import contextlib
        import io
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got
                self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=self.timeout)
        except TransportError:
            raise BoardError(
                "no MicroPython REPL answers on %s: not a MicroPython board, or a node locked "
                "down by provisioning (recovery: hold BOOT for 2 s right after reset; this erases "
                "its key)" % self.port)
        self._raw = True

    def run(self, code, timeout=10):
        """Run `code` on the node; its printed output. An exception on the
        node becomes BoardError with the last line of its traceback.
        timeout: seconds the node may stay silent."""
        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except TransportError as e:
            raise BoardError("the node on %s stopped answering (%s)" % (self.port, e))
        if err:
            text = err.decode("utf-8", "replace").strip()
            raise BoardError(text.splitlines()[-1] if text else "the node raised an error")
        return out.decode("utf-8", "replace")

    def probe(self):
        """What is this board? {sysname, machine, firmware, status}."""
        out = self.run("import os\ntry:\n u = os.uname()\n print(u.sysname)\n print(u.machine)\n"
                       "except AttributeError:\n import sys\n print(sys.platform)\n print('?')\n")
        lines = out.strip().splitlines()
        info = {"sysname": lines[0].strip() if lines else "?",
                "machine": lines[1].strip() if len(lines) > 1 else "?"}
        out = self.run("try:\n from firmware import keystore\n print(keystore.status())\n"
                       "except ImportError as e:\n print('NOFIRMWARE', e)\n")
        if out.startswith("NOFIRMWARE"):
            info["firmware"] = False
            return info
        info["firmware"] = True
        info["status"] = _status(out.strip())
        return info

    def probe_esp32(self):
        """probe(), refusing a board that is not an ESP32."""
        info = self.probe()
        if info["sysname"] != "esp32":
            raise BoardError("wrong board: %s reports %r (%s); VitalNode runs on an ESP32"
                             % (self.port, info["sysname"], info["machine"]))
        return info

    def write_file(self, path, data):
        """Write a file atomically (PATH.new, then rename)."""
        if isinstance(data, str):
            data = data.encode()
        self.t.fs_writefile(path + ".new", data)
        self.run("import os\nos.rename(%r, %r)" % (path + ".new", path))

    def reset(self):
        """Hard-reset the node (it boots its firmware) and let go of it."""
        try:
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except TransportError:
            pass
        self._raw = False
        self.close()
