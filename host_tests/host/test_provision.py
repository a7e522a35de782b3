"""Provisioning end to end: the real mpremote (its serial transport) against
the emulated board, `make deploy` / `make provision`, the registry, the
challenge-response, refusals, lock-down and recovery, and a scan of
everything the node and the tools emit for key bytes."""
import base64
import binascii
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from emulated import Emu
from tools.paths import ROOT
from tools.provision import keys
from tools.provision.registry import Registry
from tools.provision.site import dev_site


@pytest.fixture(scope="session")
def deployed_tree(tmp_path_factory):
    """The device tree as `make deploy` stages it (what a deployed board holds)."""
    from tools.deploy import stage
    out = tmp_path_factory.mktemp("stage") / "root"
    stage(out)
    return out


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    return dev_site(tmp_path_factory.mktemp("site"))


class Node:
    """One emulated board with the firmware deployed, a registry and a tap."""

    def __init__(self, tmp, tree, site, sysname=None):
        self.tmp = tmp
        self.flash = tmp / "flash"
        if tree is not None:
            shutil.copytree(tree, self.flash / "fs")
        self.registry = tmp / "registry.sqlite"
        self.site = site
        self.tap = tmp / "tap.log"
        self.emu = Emu(self.flash, tap=self.tap, sysname=sysname)
        self.outputs = []

    def tool(self, *args, timeout=3):
        r = subprocess.run([sys.executable, "-m", "tools.provision", "--registry",
                            str(self.registry), "--timeout", str(timeout), *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.outputs.append(r.stdout + r.stderr)
        return r

    def provision(self, *extra):
        return self.tool("provision", "--port", self.emu.pty, "--config", str(self.site), *extra)

    def restart(self, held_pins=None):
        """Unplug and plug in again, optionally holding buttons meanwhile."""
        self.emu.stop()
        pins = self.flash / "pins.json"
        if held_pins:
            pins.write_text(json.dumps(held_pins))
        self.emu = Emu(self.flash, tap=self.tap)
        return pins

    def nvs(self):
        st = json.loads((self.flash / "state.json").read_text())
        return st["nvs"].get("vn_key", {})

    def key_record(self):
        """(root key, generation, lock flag) from the node's NVS, or None."""
        from firmware.keystore import FMT, RECORD
        from nvsrec import decode
        nvs = self.nvs()
        return decode(FMT, [bytes.fromhex(nvs[k][1]) for k in (RECORD + "0", RECORD + "1")
                            if k in nvs])

    def root_key(self):
        r = self.key_record()
        return r[0] if r and any(r[0]) else None

    def device_id(self):
        return json.loads((self.flash / "state.json").read_text())["uid"]

    def wait_tap(self, text, timeout=20):
        import time
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.tap.exists() and text in self.tap.read_text(errors="replace"):
                return True
            time.sleep(0.1)
        return False


@pytest.fixture
def node(tmp_path, deployed_tree, site):
    n = Node(tmp_path, deployed_tree, site)
    yield n
    n.emu.stop()


def test_make_deploy_writes_the_tree_then_skips_unchanged_and_removes_stale(tmp_path):
    emu = Emu(tmp_path / "flash")
    try:
        r = subprocess.run(["make", "-s", "deploy", "PORT=" + emu.pty], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        fs = tmp_path / "flash" / "fs"
        assert (fs / "boot.py").read_text() == (ROOT / "boot.py").read_text()
        assert (fs / "a" / "firmware" / "keystore.mpy").exists() and (fs / "a" / "lib" / "qrs.mpy").exists()
        assert not list(fs.rglob("*.new"))
        emu.mpremote("exec", "open('a/lib/old.py', 'w').write('x = 1')")  # stale, would shadow
        r = subprocess.run([sys.executable, "-m", "tools.deploy", "--port", emu.pty],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 file(s) to write" in r.stdout and "removed a/lib/old.py" in r.stdout
        assert not (fs / "a" / "lib" / "old.py").exists()
        # a board whose MicroPython has the firmware frozen (manifest.py): the
        # slot would shadow the frozen modules, so it is cleared
        r = subprocess.run([sys.executable, "-m", "tools.deploy", "--port", emu.pty, "--frozen",
                            "--no-reset"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "the frozen firmware runs" in r.stdout
        assert not list((fs / "a").rglob("*.mpy")) and (fs / "boot.py").exists()
        assert emu.ota_state()["act"] == 0 and emu.ota_state()["pend"] == -1
    finally:
        emu.stop()


def test_make_provision_provisions_a_fresh_node_end_to_end(node):
    r = subprocess.run(["make", "-s", "provision", "PORT=" + node.emu.pty,
                        "REGISTRY=" + str(node.registry), "CONFIG=" + str(node.site)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    dev = node.device_id()
    assert "[5/6] challenge-response" in r.stdout and "provisioned %s" % dev in r.stdout
    with Registry(node.registry) as reg:
        d = reg.device(dev)
        assert d["status"] == "active" and d["key_gen"] == 1 and d["provisioned_at"]
        assert [e["what"] for e in reg.events(dev)] == ["key-written", "provisioned"]
        # the key in the node's NVS is the one the registry's sub-keys derive from
        root = node.root_key()
        assert len(root) == 32 and node.key_record()[1] == 1
        for purpose, k in keys.subkeys(root, dev).items():
            assert reg.key(dev, purpose) == k
    cfg = json.loads((node.flash / "fs" / "config.json").read_text())
    assert cfg["device_id"] == dev and cfg["wifi"]["ssid"] == "vitalnode-dev"
    assert (node.flash / "state.json").stat().st_mode & 0o777 == 0o600  # the emulated NVS: a key
    # after the reset the firmware boots provisioned
    assert node.wait_tap("vitalnode: provisioned, key generation 1"), node.tap.read_text()
    v = node.tool("verify", "--port", node.emu.pty)
    assert v.returncode == 0 and "OK, active (generation 1): answer matches" in v.stdout


def test_refuses_to_overwrite_then_rotates_on_request(node):
    assert node.provision().returncode == 0
    dev = node.device_id()
    root1 = node.root_key()
    r = node.provision()
    assert r.returncode == 1
    assert "already provisioned" in r.stderr and "--rotate (make provision ROTATE=1)" in r.stderr
    assert node.root_key() == root1
    with Registry(node.registry) as reg:
        assert reg.device(dev)["key_gen"] == 1
        tele1 = reg.key(dev, "telemetry")
    r = node.provision("--rotate")
    assert r.returncode == 0, r.stdout + r.stderr
    root2 = node.root_key()
    assert root2 != root1 and node.key_record()[1] == 2
    with Registry(node.registry) as reg:
        d = reg.device(dev)
        assert d["status"] == "active" and d["key_gen"] == 2 and d["rotated_at"]
        assert reg.key(dev, "telemetry") != tele1
        assert reg.key(dev, "telemetry", gen=1) == tele1  # kept for frames queued before
    assert node.tool("verify", "--port", node.emu.pty).returncode == 0


def test_challenge_response_with_a_wrong_key_fails(node):
    assert node.provision().returncode == 0
    dev = node.device_id()
    db = sqlite3.connect(node.registry)
    with db:
        db.execute("UPDATE keys SET key_hex = ? WHERE device_id = ? AND purpose = 'attest'",
                   ("00" * 32, dev))
    db.close()
    r = node.tool("verify", "--port", node.emu.pty)
    assert r.returncode == 1 and "FAILED" in r.stdout and "does not match" in r.stdout
    with Registry(node.registry) as reg:
        assert reg.events(dev)[-1]["what"] == "verify-failed"


def test_a_bad_site_config_is_refused_before_anything_is_written(node, tmp_path):
    bad = json.loads(node.site.read_text())
    bad["wifi"]["password"] = "short"
    bad["ca_cert_file"] = str(node.site.parent / "ca.pem")
    bad["ota_pubkey_file"] = str(node.site.parent / "ota_public.pem")
    path = tmp_path / "bad-site.json"
    path.write_text(json.dumps(bad))
    r = node.tool("provision", "--port", node.emu.pty, "--config", str(path))
    assert r.returncode == 1 and "wifi.password" in r.stderr
    assert node.root_key() is None and not (node.flash / "fs" / "config.json").exists()
    with Registry(node.registry) as reg:
        assert reg.devices() == []


def test_a_revoked_device_needs_reinstate(node):
    assert node.provision().returncode == 0
    dev = node.device_id()
    r = subprocess.run(["make", "-s", "revoke", "DEVICE=" + dev, "REASON=lost on ward 3",
                        "REGISTRY=" + str(node.registry)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    with Registry(node.registry) as reg:
        assert reg.device(dev)["status"] == "revoked" and not reg.is_active(dev)
    r = node.provision("--rotate")
    assert r.returncode == 1 and "revoked" in r.stderr
    assert "--reinstate (make provision REINSTATE=1)" in r.stderr
    assert node.provision("--reinstate").returncode == 0
    with Registry(node.registry) as reg:
        assert reg.is_active(dev) and reg.device(dev)["key_gen"] == 2


def test_lockdown_closes_the_repl_and_recovery_erases_the_key_first(node):
    r = node.provision("--lockdown")
    assert r.returncode == 0 and "lock-down" in r.stdout
    assert node.wait_tap("vitalnode: locked down")
    assert node.wait_tap("vitalnode: provisioned, key generation 1")
    r = node.tool("verify", "--port", node.emu.pty)
    assert r.returncode == 1 and "no MicroPython REPL answers" in r.stderr
    # what any tool would try: Ctrl-C, then Ctrl-A for the raw REPL
    import time

    import serial
    with serial.Serial(node.emu.pty, timeout=0.2) as port:
        port.write(b"\r\x03\x03\r\x01")
        got = b""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            got += port.read(256)
    assert b"raw REPL" not in got and b">>>" not in got
    assert node.root_key() is not None
    # recovery: BOOT held right after power-on
    pins = node.restart(held_pins={"0": 0})
    assert node.wait_tap("RECOVERY: device key erased")
    pins.unlink()
    assert node.root_key() is None and "lock" not in node.nvs()
    out = node.emu.mpremote("exec", "from firmware import keystore\nprint(keystore.status())")
    assert "'provisioned': False" in out.stdout
    r = node.provision()
    assert r.returncode == 1 and "already provisioned" in r.stderr  # the registry knows it
    assert node.provision("--rotate").returncode == 0


def test_clear_errors_for_missing_busy_silent_and_foreign_ports(tmp_path, site):
    reg = str(tmp_path / "r.sqlite")

    def provision(port):
        return subprocess.run([sys.executable, "-m", "tools.provision", "--registry", reg,
                               "--timeout", "2", "provision", "--port", port, "--config",
                               str(site)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    r = provision("/dev/does-not-exist")
    assert r.returncode == 1 and "no such port" in r.stderr
    # a pty nobody answers on: not a MicroPython board
    master, slave = os.openpty()
    try:
        r = provision(os.ttyname(slave))
        assert r.returncode == 1 and "no MicroPython REPL answers" in r.stderr
    finally:
        os.close(master)
        os.close(slave)
    n = Node(tmp_path / "plain", None, site)  # no firmware deployed
    try:
        import serial
        held = serial.Serial(n.emu.pty, exclusive=True)  # e.g. a serial monitor
        r = provision(n.emu.pty)
        assert r.returncode == 1 and "port busy" in r.stderr
        held.close()
        r = provision(n.emu.pty)
        assert r.returncode == 1 and "make deploy PORT=" in r.stderr
    finally:
        n.emu.stop()
    n = Node(tmp_path / "rp2", None, site, sysname="rp2")
    try:
        r = provision(n.emu.pty)
        assert r.returncode == 1 and "wrong board" in r.stderr and "'rp2'" in r.stderr
    finally:
        n.emu.stop()


def _forms(secret):
    """How a key could show up in text or bytes."""
    return [secret, secret.hex().encode(), secret.hex().upper().encode(),
            base64.b64encode(secret), binascii.b2a_base64(secret).strip()]


def test_nothing_the_node_or_the_tools_emit_contains_a_key(node):
    secrets = []
    assert node.provision().returncode == 0
    secrets.append(node.root_key())
    assert node.wait_tap("vitalnode: provisioned, key generation 1")
    assert node.tool("verify", "--port", node.emu.pty).returncode == 0
    assert node.provision("--rotate").returncode == 0
    secrets.append(node.root_key())
    assert node.wait_tap("vitalnode: provisioned, key generation 2")
    assert node.tool("list").returncode == 0
    dev = node.device_id()
    with Registry(node.registry) as reg:
        for gen in (1, 2):
            secrets += [reg.key(dev, p, gen) for p in keys.PURPOSES if p != "broker"]
    # everything emitted: the board's serial output, the tools' output, the
    # node's files; and the registry must not hold a root key
    emitted = [node.tap.read_bytes(), "\n".join(node.outputs).encode()]
    emitted += [p.read_bytes() for p in (node.flash / "fs").rglob("*") if p.is_file()]
    for blob in emitted:
        for s in secrets:
            for f in _forms(s):
                assert f not in blob
    registry = node.registry.read_bytes()
    for root in secrets[:2]:
        for f in _forms(root):
            assert f not in registry


def test_a_board_whose_firmware_claims_a_service_identity_gets_nothing(node):
    """Issue 19 §1 as it was found: a firmware reporting the id `gateway`."""
    src = (ROOT / "firmware" / "keystore.py").read_text()
    hostile = src.replace('def device_id():\n', 'def device_id():\n    return "gateway"\n', 1)
    assert hostile != src
    (node.flash / "fs" / "firmware" / "keystore.py").write_text(hostile)  # .py before .mpy
    r = node.provision()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the board reports the device id 'gateway'" in r.stderr and "Traceback" not in r.stderr
    assert "nothing was written" in r.stderr
    assert not (node.flash / "fs" / "config.json").exists() and node.root_key() is None
    with Registry(node.registry) as reg:
        assert reg.devices() == []
