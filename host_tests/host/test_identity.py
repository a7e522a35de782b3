"""Device identities (issue 19 §1): a device id has one form - the chip's
MAC as 12 lower-case hex digits - and a board that reports anything else
is refused before a byte reaches the board or the registry; no device
login can take a service login's place, at provisioning, in the registry,
in the broker or in the ward; each device's ACL names its own topics only."""
import json
import sqlite3

import pytest

from tools.broker import SERVICES, Broker, BrokerError, acl_text
from tools.provision import __main__ as prov
from tools.provision import keys
from tools.provision.registry import Registry, RegistryError
from tools.provision.site import dev_site

# what an attacker's firmware may report as its device id
ATTACKER_IDS = ["gateway", "operator", "+", "#", "vn/x", "../x", "240ac4000001a", "240AC4000001",
                "240ac400000", "", "240ac400\x0001", "240ac4+00001", "240ac4#00001", " 240ac400001",
                "240ac400001\n", "24:0a:c4:00:00", "\uff12\uff14" * 6, "$SYS/broker", "%u",
                "gateway\x00", None, 240, ["240ac4000001"]]
GOOD = "240ac4000abc"


class FakeBoard:
    """A board whose firmware reports `device_id`; records every write."""

    def __init__(self, device_id, provisioned=False):
        self.device_id = device_id
        self.provisioned = provisioned
        self.written = []
        self.ran = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def write_file(self, path, data):
        self.written.append(path)

    def run(self, code, timeout=10):
        self.ran.append(code)
        return ""

    def enter(self):
        pass

    def reset(self):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return dev_site(tmp_path_factory.mktemp("site"))


def _provision(tmp_path, site, board, capsys):
    info = {"machine": "ESP32 module", "firmware": True, "sysname": "esp32",
            "status": {"device_id": board.device_id, "provisioned": board.provisioned, "gen": 0,
                       "lockdown": False}}
    reg = tmp_path / "registry.sqlite"
    rc = prov.main(["--registry", str(reg), "provision", "--port", "/dev/null",
                    "--config", str(site)], connect=lambda port, timeout: (board, info))
    return rc, reg, capsys.readouterr()


def test_provisioning_refuses_every_id_but_a_mac_with_nothing_written(tmp_path, site, capsys):
    for i, bad in enumerate(ATTACKER_IDS):
        board = FakeBoard(bad)
        rc, reg, out = _provision(tmp_path / str(i), site, board, capsys)
        assert rc == 1, (bad, out)
        err = out.err.strip()
        assert err.startswith("provision: error: the board reports the device id ") and \
            "not a device id" in err and "nothing was written" in err and "\n" not in err, err
        assert "Traceback" not in out.err
        assert board.written == [] and board.ran == [], bad  # nothing reached the board
        with Registry(reg) as r:
            assert r.devices() == [], bad
            assert r.db.execute("SELECT COUNT(*) FROM keys").fetchone()[0] == 0
            assert r.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


def test_verify_refuses_a_board_reporting_a_service_name(tmp_path, capsys):
    board = FakeBoard("gateway", provisioned=True)
    info = {"machine": "ESP32", "firmware": True, "sysname": "esp32",
            "status": {"device_id": "gateway", "provisioned": True, "gen": 1, "lockdown": False}}
    rc = prov.main(["--registry", str(tmp_path / "r.sqlite"), "verify", "--port", "/dev/null"],
                   connect=lambda port, timeout: (board, info))
    assert rc == 1 and "not a device id" in capsys.readouterr().err and board.ran == []


def test_the_challenge_must_answer_for_the_checked_id(tmp_path):
    """A board that reports a good id but answers the challenge for another
    (say, one whose key it stole) fails attestation."""
    root = keys.new_root()
    with Registry(tmp_path / "r.sqlite") as reg:
        reg.begin(GOOD, 1, keys.subkeys(root, GOOD), "esp32", False)
        other = "240ac4000def"
        tag = keys.attest_response(keys.subkey(root, "attest", other), other, b"n" * 32)

        class Liar(FakeBoard):
            def run(self, code, timeout=10):
                return "%s %s\n" % (other, tag.hex())
        ok, why = prov._attest(Liar(GOOD), reg, GOOD)
        assert not ok and "answers for the device id '240ac4000def'" in why


def test_the_registry_refuses_to_record_anything_but_a_device_id(tmp_path):
    with Registry(tmp_path / "r.sqlite") as reg:
        for bad in ATTACKER_IDS:
            with pytest.raises(RegistryError, match="refusing to register"):
                reg.begin(bad, 1, keys.subkeys(keys.new_root(), "x"), "esp32", False)
        assert reg.devices() == []


def test_the_broker_keeps_services_and_devices_apart(tmp_path):
    site = dev_site(tmp_path / "site").parent
    b = Broker(tmp_path / "broker", site)
    b.set_users({"gateway": "gw", "operator": "op"})
    for bad in ATTACKER_IDS[2:]:
        if isinstance(bad, str):
            with pytest.raises(BrokerError, match="neither a service"):
                b.add_user(bad, "pw")
    for svc in SERVICES:
        with pytest.raises(BrokerError, match="service's name"):
            b.set_devices({svc: "device password"})
    b.set_devices({GOOD: "pw-a"})
    assert b.users == {"gateway": "gw", "operator": "op", GOOD: "pw-a"}
    b.set_devices({})  # every device gone: the services stay
    assert b.users == {"gateway": "gw", "operator": "op"}


def test_the_acl_names_each_device_and_only_its_own_topics():
    a, c = GOOD, "240ac4000def"
    text = acl_text([a, c])
    assert "pattern" not in text and "%u" not in text
    blocks = {}
    user = None
    for line in text.splitlines():
        if line.startswith("user "):
            user = line[5:]
            blocks[user] = []
        elif line.startswith("topic ") and user:
            blocks[user].append(line)
    for d in (a, c):
        assert blocks[d] == ["topic write vn/%s/tm" % d, "topic write vn/%s/state" % d,
                             "topic read vn/%s/cmd" % d, "topic read vn/%s/ack" % d]
    assert blocks["gateway"] == ["topic read vn/+/tm", "topic read vn/+/state",
                                 "topic write vn/+/ack"]


def test_a_registry_poisoned_before_this_fix_gives_no_service_login(tmp_path):
    """A registry that already holds a row 'gateway' (the attack of issue 19)
    still starts the ward; the row gets no login and the gateway keeps its own."""
    from tools.broker import free_port
    from tools.ward import Ward
    site = dev_site(tmp_path / "site")
    cfg = json.loads(site.read_text())
    cfg["broker"] = {"host": "localhost", "port": free_port()}
    site.write_text(json.dumps(cfg))
    reg = tmp_path / "registry.sqlite"
    root = keys.new_root()
    with Registry(reg) as r:
        r.begin(GOOD, 1, keys.subkeys(root, GOOD), "esp32", False)
        r.activate(GOOD)
    db = sqlite3.connect(str(reg))
    with db:  # the poisoned row, as an unfixed tool wrote it
        db.execute("INSERT INTO devices (device_id, status, key_gen, created_at, updated_at) "
                   "VALUES ('gateway', 'active', 1, 'x', 'x')")
    db.close()
    logs = []
    w = Ward(site, reg, workdir=tmp_path / "ward", listen="127.0.0.1", log=logs.append).start()
    try:
        assert w.broker.users["gateway"] == w.gw_password
        assert set(w.broker.users) == {"gateway", GOOD}
        assert any("ignoring registry entry 'gateway'" in s for s in logs)
        assert not w.sync()
        acl = (tmp_path / "ward" / "broker" / "acl").read_text()
        assert "topic write vn/gateway" not in acl
    finally:
        w.stop()


def test_a_malformed_status_from_the_board_is_refused_in_one_line():
    from tools.provision.board import BoardError, _status
    good = "{'device_id': '240ac4000abc', 'provisioned': False, 'gen': 0, 'lockdown': False}"
    assert _status(good)["device_id"] == "240ac4000abc"
    for bad in ("", "garbage(", "[1, 2]", "{'device_id': 'x'}", "__import__('os')",
                good.replace("0,", "'0',"), good.replace("False,", "0,", 1),
                good.replace("'lockdown': False", "'lockdown': False, 'extra': 1"),
                "[" * 500 + "]" * 500, good.replace("0,", "-1,")):
        with pytest.raises(BoardError, match="not as VitalNode does") as e:
            _status(bad)
        assert "\n" not in str(e.value)
