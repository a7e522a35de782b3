"""An update as a user runs it, on the emulated board (the wasm VM behind a
pty, a simulated sensor board on its I2C bus): `make deploy` puts v1 in
slot a, provisioning gives it its key and config, `make ota-push` makes
the node fetch v2 from the update server over TCP, the node reboots into
the trial, its app confirms after the health check; v1 served again is
refused as a downgrade. Nothing here calls the device code directly."""
import json
import subprocess
import sys
import time

from emulated import Emu
from tools.ota import bundle
from tools.ota.server import serve_in_thread
from tools.paths import ROOT
from tools.provision.site import dev_site


def _run(*args, timeout=300):
    r = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def _code(v):
    x, y, z = (int(p) for p in v.split("."))
    return x * 1000000 + y * 1000 + z


def _events(flash):
    log = flash / "fs" / "security.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_deploy_v1_push_v2_confirm_then_v1_is_refused_as_a_downgrade(tmp_path):
    site = dev_site(tmp_path / "site")
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "sensor.json").write_text(json.dumps({"chip": "max86150"}))
    tap = tmp_path / "tap.log"
    emu = Emu(flash, tap=tap, speed=10)
    v1 = bundle.tree_version()
    x, y, _ = v1.split(".")
    v2 = "%s.%d.0" % (x, int(y) + 1)
    try:
        rc, out = _run("make", "-s", "deploy", "PORT=" + emu.pty)
        assert rc == 0, out
        rc, out = _run(sys.executable, "-m", "tools.provision", "--registry",
                       str(tmp_path / "reg.sqlite"), "provision", "--port", emu.pty,
                       "--config", str(site))
        assert rc == 0, out
        assert emu.ota_state()["ver"] == _code(v1)

        key = site.parent / "ota_private.pem"
        man = bundle.build(tmp_path / "v2", key, v2, 1, log=lambda s: None)
        bundle.build(tmp_path / "v1", key, v1, 1, log=lambda s: None)
        served = []
        srv2, url2 = serve_in_thread(tmp_path / "v2", log=served.append)
        srv1, url1 = serve_in_thread(tmp_path / "v1")
        try:
            rc, out = _run("make", "-s", "ota-push", "PORT=" + emu.pty, "URL=" + url2)
            assert rc == 0, out
            assert "installed %s" % v2 in out
            assert len(served) == 1 + len(man["files"]), served  # manifest, then each file once

            # the node reboots into slot b on trial; its app confirms once healthy (the
            # confirmation is committed before the app prints it: wait for both)
            deadline = time.monotonic() + 120
            while (emu.ota_state().get("pend", -1) >= 0 or emu.ota_state()["act"] != 1
                   or "update confirmed after the health check" not in tap.read_text(errors="replace")):
                assert time.monotonic() < deadline, tap.read_text(errors="replace")[-3000:]
                time.sleep(0.2)
            text = tap.read_text(errors="replace")
            assert "running an update on trial" in text
            assert "update confirmed after the health check" in text
            ota = emu.ota_state()
            assert (ota["ver"], ota["ctr"]) == (_code(v2), 1)

            rc, out = _run(sys.executable, "-m", "tools.ota", "push", "--port", emu.pty,
                           "--url", url1)
            assert rc == 1 and "refused the update: downgrade" in out, out
        finally:
            for srv in (srv1, srv2):
                srv.shutdown()
                srv.server_close()
        # the server is gone now: a clear refusal, nothing changes
        rc, out = _run(sys.executable, "-m", "tools.ota", "push", "--port", emu.pty, "--url", url1)
        assert rc == 1 and "refused the update: io" in out, out
        ota = emu.ota_state()
        assert (ota["act"], ota["pend"], ota["ver"], ota["ctr"]) == (1, -1, _code(v2), 1)
        evs = [(e["ev"], e.get("reason")) for e in _events(flash)]
        assert evs == [("ota-install", None), ("ota-confirm", None), ("ota-reject", "downgrade"),
                       ("ota-reject", "io")]
    finally:
        emu.stop()
