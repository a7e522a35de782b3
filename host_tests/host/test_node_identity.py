"""The firmware's boot path with identity: an unprovisioned or misconfigured
node stays in its safe state (no sensor, no radio, no crash loop), a
provisioned node runs with its config's alert thresholds, and nothing it
prints or stores contains its key. The whole boot.py -> main.py on the
simulated board (tools/vm/node.py, CPython)."""
import binascii
import json

import pytest

from tools import hostshims
from tools.paths import ROOT
from tools.provision.image import simulated_node
from tools.provision.site import dev_site

hostshims.install()
DEVICE = "240ac4000001"  # simboard.Board's default unique_id


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return dev_site(tmp_path_factory.mktemp("site"))


def _run(image, seconds, capsys):
    import simboard

    from tools.vm import node
    b = simboard.new_board()
    s = node.run(str(ROOT), seconds, board=b, sensor={"chip": "max86150"}, image=image)
    return s, b, capsys.readouterr().out.splitlines()


def _image(tmp_path, site, **cfg_changes):
    image, cfg, root = simulated_node(DEVICE, tmp_path / "reg.sqlite", site)
    cfg.update(cfg_changes)
    image["files"]["config.json"] = json.dumps(cfg)
    image["root"] = root.hex()  # for the test; node.run reads only "nvs" and "files"
    return image


def test_an_unprovisioned_node_stays_safe_and_sends_nothing(capsys):
    s, b, lines = _run(None, 35, capsys)
    safe = [ln for ln in lines if ln.startswith("vitalnode: SAFE STATE (unprovisioned")]
    assert len(safe) == 4  # at 0, 10, 20 and 30 s
    assert not any(ln.startswith("vitalnode: sensor") for ln in lines)
    assert s["sensor_samples_produced"] == 0  # the chip was never started
    assert b.wlans == []  # no radio
    assert s["resets"] == [] and s["crashes"] == 0 and s["boots"] == 1  # no crash loop


def test_a_bad_config_value_keeps_the_node_safe_and_names_the_field(tmp_path, site, capsys):
    image = _image(tmp_path, site, alerts={"hr_low": 5})
    s, b, lines = _run(image, 25, capsys)
    safe = [ln for ln in lines if ln.startswith("vitalnode: SAFE STATE (config: alerts: hr_low")]
    assert len(safe) == 3, lines
    assert s["sensor_samples_produced"] == 0 and s["resets"] == [] and s["crashes"] == 0


def test_a_config_of_another_node_is_refused(tmp_path, site, capsys):
    image = _image(tmp_path, site, device_id="240ac4999999")
    _, _, lines = _run(image, 5, capsys)
    assert any("SAFE STATE (config: device_id: is 240ac4999999 but this node is 240ac4000001"
               in ln for ln in lines), lines


def test_a_provisioned_node_uses_its_configured_alert_thresholds(tmp_path, site, capsys):
    # the synthetic source beats at 72 bpm: below a configured hr_low of 80
    # (the default, 40, raises nothing)
    image = _image(tmp_path, site, alerts={"hr_low": 80, "hr_on_s": 2})
    s, _, lines = _run(image, 30, capsys)
    assert "vitalnode: provisioned, key generation 1, broker localhost:8883" in lines
    assert "vitalnode: sensor MAX86150" in lines
    assert "vitalnode: alert hr_low raised" in lines
    assert s["crashes"] == 0 and s["resets"] == []


def test_nothing_a_running_node_prints_or_stores_contains_its_key(tmp_path, site, capsys):
    image = _image(tmp_path, site)
    root = bytes.fromhex(image["root"])
    s, b, lines = _run(image, 30, capsys)
    assert any(ln.startswith("vitalnode: up 20 s") for ln in lines)
    # the console and the summary; the harness prints the simulated chip's NVS
    # (where the key is kept) only in the soak's one-boot runs, not here
    assert not any(ln.startswith("SIM-SNAPSHOT ") for ln in lines)
    console = lines
    out = ("\n".join(console) + json.dumps(s)).encode()
    files = b"".join(b.fs.read_bytes(p) for p in _walk(b.fs, ""))
    files += b.flash.read_bytes(0, b.flash.size)  # and nowhere on the raw flash either
    for form in (root, root.hex().encode(), root.hex().upper().encode(),
                 binascii.b2a_base64(root).strip()):
        assert form not in out and form not in files


def _walk(fs, d):
    for name, kind, *_ in fs.ilistdir(d):
        p = d + "/" + name if d else name
        if kind == 0x4000:
            yield from _walk(fs, p)
        else:
            yield p


def _trial(image):
    import stage0
    image["nvs"][stage0.NS] = stage0.encode({"act": 0, "pend": 1, "tries": 0, "ctr": 1,
                                             "pver": 7000, "pctr": 3})
    return image


def test_a_trial_boot_is_confirmed_once_the_node_is_healthy(tmp_path, site, capsys):
    s, b, lines = _run(_trial(_image(tmp_path, site)), 60, capsys)
    import stage0
    ota = stage0.state()
    assert (ota["act"], ota["pend"], ota["ctr"], ota["ver"]) == (1, -1, 3, 7000)
    assert "vitalnode: update confirmed after the health check" in lines
    assert s["resets"] == []
    events = [json.loads(ln) for ln in b.fs.read_bytes("security.log").decode().splitlines()]
    assert [e["ev"] for e in events] == ["ota-confirm"]


def test_a_trial_without_a_working_sensor_is_reverted_at_its_health_check(tmp_path, site, capsys):
    """It can never pass: reverted at HEALTH_S, not after MAX_TRIES confirm
    deadlines (minutes without monitoring)."""
    import stage0
    import simboard

    from firmware import app
    from tools.vm import node
    b = simboard.new_board()
    s = node.run(str(ROOT), app.HEALTH_S + 20, board=b, sensor=None,
                 image=_trial(_image(tmp_path, site)))
    ota = stage0.state()
    assert (ota["act"], ota["pend"], ota["ctr"]) == (0, -1, 1)  # counter never advanced
    assert len(s["resets"]) == 1  # the abandonment's: no confirm deadline ran out
    events = [json.loads(ln) for ln in b.fs.read_bytes("security.log").decode().splitlines()]
    assert [e["ev"] for e in events] == ["ota-abandon", "ota-revert"]
    assert events[0]["reason"] == "no sensor" and events[1]["version_code"] == 7000
    from firmware import otatrial
    assert otatrial.reverted() == 7000  # and refused until a newer version comes
    capsys.readouterr()
