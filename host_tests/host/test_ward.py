"""`make ward`: the broker and gateway a user runs for real boards. The
logins follow the registry (active devices in, newly provisioned ones in
at the next sync, revoked ones out), TLS names the site's broker host, and
the gateway behind it sees what nodes publish."""
import json
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest

from tools.broker import free_port
from tools.paths import ROOT
from tools.provision import keys
from tools.provision.registry import Registry
from tools.provision.site import SiteError, dev_site, make_site
from tools.ward import Ward, WardError

A, B = "240ac4000101", "240ac4000102"


def _provision(reg_path, dev):
    root = keys.new_root()
    sub = keys.subkeys(root, dev)
    with Registry(reg_path) as reg:
        reg.begin(dev, 1, sub, "esp32", False)
        reg.activate(dev)
    return keys.broker_password(sub["broker"])


def _wait(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _login(ward, site_dir, user, password, publish=None):
    """CONNACK of a TLS login by `user` to the ward's broker, by the name
    in the site config (the certificate must name it); publishes
    `publish` (topic, payload) if the login succeeded."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-%s-%d" % (user, time.monotonic_ns()))
    c.username_pw_set(user, password)
    c.tls_set(ca_certs=str(site_dir / "ca.pem"))
    rc = []
    c.on_connect = lambda cl, u, f, reason, p=None: rc.append(reason)
    c.connect(ward.site["broker"]["host"], ward.site["broker"]["port"])
    c.loop_start()
    try:
        _wait(lambda: rc)
        if publish and not rc[0].is_failure:
            c.publish(*publish, qos=1).wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()
    return not rc[0].is_failure


@pytest.fixture
def ward(tmp_path):
    site = dev_site(tmp_path / "site")
    cfg = json.loads(site.read_text())
    cfg["broker"] = {"host": "localhost", "port": free_port()}
    site.write_text(json.dumps(cfg))
    reg = tmp_path / "registry.sqlite"
    pw = {A: _provision(reg, A)}
    w = Ward(site, reg, workdir=tmp_path / "ward", listen="127.0.0.1", log=lambda s: None).start()
    yield w, pw, reg, site.parent
    w.stop()


def test_logins_follow_the_registry(ward):
    w, pw, reg, site_dir = ward
    assert _login(w, site_dir, A, pw[A])
    assert not _login(w, site_dir, A, "guess")
    pw[B] = _provision(reg, B)  # provisioned while the ward runs
    assert not _login(w, site_dir, B, pw[B])
    assert w.sync() and _login(w, site_dir, B, pw[B])
    assert not w.sync()  # nothing changed: no reload
    with Registry(reg) as r:
        r.revoke(A, "lost on the ward")
    assert w.sync()
    assert not _login(w, site_dir, A, pw[A]) and _login(w, site_dir, B, pw[B])


def test_what_a_node_publishes_reaches_the_gateway(ward):
    w, pw, reg, site_dir = ward
    assert _login(w, site_dir, A, pw[A], publish=("vn/%s/tm" % A, b"not a frame"))
    _wait(lambda: w.gw.counts["malformed"] == 1)


def test_a_site_without_its_ca_key_is_refused(tmp_path):
    site = dev_site(tmp_path / "site")
    (site.parent / "ca.key").unlink()
    with pytest.raises(WardError, match="no ca.key"):
        Ward(site, tmp_path / "r.sqlite", workdir=tmp_path / "w")


def test_cli_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.ward", "--site", str(tmp_path / "no.json"),
                        "--registry", str(tmp_path / "r.sqlite")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("ward: error: site config") \
        and "Traceback" not in r.stderr


def test_a_site_for_a_lan_address_names_it_in_the_certificate(tmp_path):
    """`make site BROKER=<the PC's address>`: nodes connect by IP address,
    and TLS verifies the ward's certificate for it."""
    site = make_site(tmp_path / "site", "clinic-lab", "lab-password", "127.0.0.1:%d" % free_port())
    reg = tmp_path / "registry.sqlite"
    pw = _provision(reg, A)
    w = Ward(site, reg, workdir=tmp_path / "ward", listen="127.0.0.1", log=lambda s: None).start()
    try:
        assert w.site["broker"]["host"] == "127.0.0.1" and _login(w, site.parent, A, pw)
    finally:
        w.stop()


def test_a_site_the_node_would_refuse_is_not_written(tmp_path):
    with pytest.raises(SiteError, match="wifi.password"):
        make_site(tmp_path / "site", "lab", "short", "10.0.0.2")
    assert not (tmp_path / "site" / "site.json").exists()
    # corrected, it is made: the refused attempt does not count as a site to keep
    path = make_site(tmp_path / "site", "lab", "long-enough-password", "10.0.0.2")
    assert json.loads(path.read_text())["wifi"]["ssid"] == "lab"


def test_a_revoked_device_loses_its_login_and_its_open_session_at_once(ward):
    w, pw, reg, site_dir = ward
    w.changed()  # the registry as it is now
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-open-session")
    c.username_pw_set(A, pw[A])
    c.tls_set(ca_certs=str(site_dir / "ca.pem"))
    events = []
    c.on_connect = lambda cl, u, f, rc, p=None: events.append("up" if not rc.is_failure else "refused")
    c.on_disconnect = lambda cl, u, f, rc, p=None: events.append("down")
    c.reconnect_delay_set(30, 60)  # no reconnect within this test
    c.connect(w.site["broker"]["host"], w.site["broker"]["port"])
    c.loop_start()
    try:
        _wait(lambda: events == ["up"])
        assert not w.changed()  # nothing happened yet: the ward does nothing
        with Registry(reg) as r:
            r.revoke(A, "stolen")
        assert w.changed()  # one PRAGMA sees the revocation (the ward checks every 0.25 s)
        assert w.sync()
        _wait(lambda: "down" in events)  # mosquitto ended the open session on the reload
        assert A not in w.broker.users and not _login(w, site_dir, A, pw[A])
        for f in ("passwd", "acl", "server.key"):  # the broker's secrets: owner-only
            assert (w.dir / "broker" / f).stat().st_mode & 0o777 == 0o600, f
        assert (w.dir / "broker").stat().st_mode & 0o777 == 0o700
    finally:
        c.loop_stop()
        c.disconnect()


def test_site_and_key_files_are_owner_only(tmp_path):
    import stat
    from tools.ota import bundle
    site = make_site(tmp_path / "site", "ward-3", "correct horse", "10.0.0.2:8883")
    d = site.parent
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("site.json", "ca.key", "ota_private.pem"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    priv, _ = bundle.keygen(tmp_path / "otakey")
    assert stat.S_IMODE(priv.parent.stat().st_mode) == 0o700
    Registry(tmp_path / "newdir" / "registry.sqlite").close()
    assert stat.S_IMODE((tmp_path / "newdir").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "newdir" / "registry.sqlite").stat().st_mode) == 0o600


def test_make_site_does_not_replace_a_site_json_without_force(tmp_path):
    first = make_site(tmp_path / "site", "ward-3", "ward-3-password", "10.0.0.2")
    with pytest.raises(SiteError, match=r"site.json exists: refusing.*FORCE=1"):
        make_site(tmp_path / "site", "ward-4", "ward-4-password", "10.0.0.9")
    assert json.loads(first.read_text())["wifi"]["ssid"] == "ward-3"
    r = subprocess.run([sys.executable, "-m", "tools.provision", "--registry",
                        str(tmp_path / "r.sqlite"), "site", "--out", str(tmp_path / "site"),
                        "--ssid", "ward-4", "--wifi-password", "ward-4-password", "--broker",
                        "10.0.0.9"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "FORCE=1" in r.stderr
    assert json.loads(first.read_text())["wifi"]["ssid"] == "ward-3"
    assert make_site(tmp_path / "site", "ward-4", "ward-4-password", "10.0.0.9", replace=True)
    assert json.loads(first.read_text())["wifi"]["ssid"] == "ward-4"
