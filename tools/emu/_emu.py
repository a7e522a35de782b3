"""Runs inside the emulated device's MicroPython VM (wasm port): wires the
shims to the Node host (`emuhost` JS module) - persistence of NVS/OTA state,
resets that reboot the VM, real-time pacing and Ctrl-C while firmware sleeps -
and translates the VM's Emscripten errno values to the Linux/ESP32 ones that
tools such as mpremote test for (missing file -> ENOENT = 2)."""
import builtins
import json

import emuhost
import simboard
import vclock

# Emscripten errno -> Linux/MicroPython errno
_ERRNO = {44: 2, 20: 17, 54: 20, 31: 21, 28: 22, 55: 39, 2: 13, 51: 28, 8: 9, 29: 5, 63: 1,
          37: 36, 10: 16, 69: 30}


def translate(e):
    n = e.args[0] if e.args else None
    if isinstance(n, int) and n in _ERRNO:
        return OSError(_ERRNO[n])
    return e


def wrap(fn):
    def call(*a, **kw):
        try:
            return fn(*a, **kw)
        except OSError as e:
            raise translate(e)
    return call


def _save():
    emuhost.save_state(json.dumps(simboard.board.snapshot()))


def _reset(cause, why):
    _save()
    emuhost.reset(cause)
    raise SystemExit  # the REPL returns; the host reboots the VM


def _idle(us):
    if emuhost.idle(us):
        raise KeyboardInterrupt


class _Module:
    pass


def _micropython_module():
    """`micropython` as the firmware sees it: the built-in, with kbd_intr
    also telling the host, which delivers Ctrl-C (see device.mjs idle)."""
    import sys

    import micropython as real
    m = _Module()
    for name in dir(real):
        if not name.startswith("__"):
            setattr(m, name, getattr(real, name))

    def kbd_intr(c):
        real.kbd_intr(c)
        emuhost.kbd_intr(c)
    m.kbd_intr = kbd_intr
    sys.modules["micropython"] = m


def setup(state_json, cause, new_uid, pins_json="{}", sensor_json=""):
    import binascii
    b = simboard.new_board(uid=binascii.unhexlify(new_uid))
    if state_json:
        b.restore(json.loads(state_json))
    for num, level in json.loads(pins_json).items():
        b.pin(int(num)).drive(level)  # held by hand since power-on
    if sensor_json:
        import simmax
        simmax.attach_spec(json.loads(sensor_json))
    _micropython_module()
    b.reset_cause = cause
    b.on_nvs_commit = _save
    simboard.reset_hook = _reset
    vclock.clock.idle_hook = _idle
    builtins.open = wrap(builtins.open)
    _save()


def tick(us):
    """Real time passed at the prompt: let the virtual clock (and a running
    watchdog) catch up."""
    vclock.clock.advance_to(vclock.clock.now_us + us)
