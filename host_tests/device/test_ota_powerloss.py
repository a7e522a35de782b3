"""Power loss at every flash write, erase, rename and NVS/otadata commit of
an update - staging, the trial boot and the confirm - then a reboot: the
node boots the old app or the complete new one, the MicroPython image
matches the app slot, the security counter never goes back, and the update
can still be completed."""
import stage0
import otafixture as fx
import simboard

from firmware import ota, otatrial, storage

NOW = 1800000000
V1 = {"firmware/app.py": b"print('app v1')\n", "lib/x.py": b"X = 1\n"}
V2 = {"firmware/app.py": b"print('app v2')\n" * 40, "lib/x.py": b"X = 2\n" * 300,
      "lib/y.py": b"Y = 2\n", "firmware/extra.json": b"{}"}
IMAGE = fx.app_image(size=5600)  # two partition blocks
EXPECT = {0: V1, 1: V2}


def _setup():
    b = simboard.new_board()
    storage.use(b.fs)
    fx.deployed(V1)
    storage.makedirs("b/lib")  # leftovers of an earlier, abandoned update
    with b.fs.open("b/lib/old.py", "wb") as f:
        f.write(b"OLD = 1\n")
    return b


def _flow(b):
    ota.install(fx.bundle(V2, image=IMAGE, version="1.1.0", counter=4), None, fx.N, now_s=NOW)
    b.reset(simboard.HARD_RESET)  # the app resets with machine.reset()
    slot, trial = stage0.choose()
    assert slot == 1 and trial
    assert otatrial.confirm()


def _slot(b, root):
    out = {}
    for p in EXPECT[1]:
        try:
            out[p] = b.fs.read_bytes(root + "/" + p)
        except OSError:  # not there
            pass
    return out


def _check(b, k):
    slot, trial = stage0.choose()
    st = stage0.state()
    assert st["ctr"] in (1, 4), (k, st)
    files = _slot(b, stage0.SLOTS[slot])
    assert files == EXPECT[slot], ("slot %d incomplete after power loss at op %d" % (slot, k))
    running = b.otadata.running
    assert running == ("ota_1" if slot == 1 else "ota_0"), (k, slot, running)
    if st["ctr"] == 4:
        assert slot == 1 and not trial
    # the node recovers: finish the trial or redo the update
    if trial:
        assert otatrial.confirm()
    elif slot == 0:
        _flow(b)
    st = stage0.state()
    assert (st["act"], st["pend"], st["ctr"]) == (1, -1, 4), (k, st)


def test_power_loss_at_every_flash_op_of_an_update():
    n = fx.powerloss_sweep(_setup, _flow, _check)
    assert n > 30  # every file write, sync, mkdir, block erase/program and commit
    print("crash points exercised:", n)
