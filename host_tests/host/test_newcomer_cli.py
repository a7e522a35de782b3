"""What a newcomer's mistakes get (issue 24): one line on stderr naming what
is wrong, exit status 2, nothing made or overwritten - and Ctrl-C stops
`make sim` and `make ward` quietly, with nothing left running."""
import json
import os
import signal
import subprocess
import sys

import pytest

from tools.broker import free_port
from tools.paths import ROOT


def _sim(sim_args, *args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "tools.sim", *sim_args, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def _one_line_refusal(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    return r.stderr


@pytest.mark.parametrize("args, names", [
    (["--record", "999"], ["--record (RECORD=) 999", "999.hea", "999.dat", "records there: 100"]),
    (["--ppg", "99"], ["--ppg (PPG=) 99", "bidmc_99_Signals.csv.gz", "records there: 01"]),
    (["--duration", "0"], ["DURATION=", "1 or more"]),
    (["--duration", "-5"], ["DURATION=", "1 or more"]),
])
def test_sim_refuses_a_record_it_cannot_read_and_a_run_of_no_time(tmp_path, sim_args, args,
                                                                  names):
    err = _one_line_refusal(_sim(sim_args, *args))
    assert err.startswith("sim: error: ") and all(n in err for n in names), err
    assert not (tmp_path / "sim").exists()  # no world, no summary: nothing ran


def test_without_the_recordings_the_sim_says_what_is_missing_and_how_to_get_it(tmp_path,
                                                                                 sim_args):
    err = _one_line_refusal(_sim(sim_args, env={"VITALNODE_DATA": str(tmp_path / "none")}))
    assert "no recordings folder %s" % (tmp_path / "none") in err
    for what in ("mitdb/", "bidmc/", "MIT-BIH", "BIDMC", "physionet.org", "VITALNODE_DATA="):
        assert what in err, what
    (tmp_path / "data" / "mitdb").mkdir(parents=True)
    err = _one_line_refusal(_sim(sim_args, env={"VITALNODE_DATA": str(tmp_path / "data")}))
    assert "has no 100.hea, 100.dat, 100.atr (records there: none)" in err


def test_a_max30102_run_does_not_score_its_pulses_against_another_patients_ecg(tmp_path,
                                                                               sim_args):
    r = _sim(sim_args, "--chip", "max30102", "--runtime", "cpython", "--duration", "20",
             "--record", "999")  # no ECG on this chip: the MIT-BIH record is not read at all
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads((tmp_path / "sim" / "summary.json").read_text())
    assert s["chip"] == "max30102" and s["frames_stored"] > 0
    assert s["beats_reference"] is None and s["se"] is None and s["ppv"] is None
    assert "MAX30102 has no ECG" in s["beat_score_skipped"]
    assert all("se" not in p and "beats_reference" not in p for p in s["per_node"])
    assert "beats: not scored (the MAX30102 has no ECG" in r.stdout
    head = [x for x in r.stdout.splitlines() if x.startswith("sim: 20 simulated")][0]
    assert "BIDMC 01 (MAX30102: PPG only)" in head and "MIT-BIH" not in head


def _interrupt_when(cmd, ready, timeout=120):
    """Start `cmd` in a process group of its own, send the group SIGINT (as
    Ctrl-C in a terminal does) once a line starts with `ready`; returns
    (exit status, stdout, stderr) and checks nothing of the group is left."""
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    seen = []
    for line in p.stdout:
        seen.append(line)
        if line.startswith(ready):
            break
    else:
        p.wait()
        pytest.fail("never got %r: %s %s" % (ready, "".join(seen), p.stderr.read()))
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=timeout)
    with pytest.raises(ProcessLookupError):  # the VMs, mosquitto, the gateway: all gone
        os.killpg(p.pid, 0)
    return p.returncode, "".join(seen) + out, err


def test_ctrl_c_stops_the_sim_quietly_and_leaves_nothing_running(tmp_path, sim_args):
    rc, out, err = _interrupt_when([sys.executable, "-m", "tools.sim", *sim_args,
                                    "--duration", "6000"], "sim: t=")
    assert rc == 130
    assert err == "sim: interrupted: nodes, broker and gateway stopped; no summary written\n"
    assert "Traceback" not in out and "Exception" not in out
    assert not (tmp_path / "sim" / "summary.json").exists()


def test_ctrl_c_stops_the_ward_quietly(tmp_path):
    from tools.provision.site import make_site
    site = make_site(tmp_path / "site", "lab", "lab-password", "127.0.0.1:%d" % free_port())
    rc, out, err = _interrupt_when(
        [sys.executable, "-m", "tools.ward", "--site", str(site), "--registry",
         str(tmp_path / "r.sqlite"), "--db", str(tmp_path / "gw.sqlite"), "--listen",
         "127.0.0.1", "--app-port", "0"], "ward: 0 active device(s) may log in")
    assert rc == 0 and err == "" and "Traceback" not in out
    assert "ward: stopped;" in out and "make export DB=%s" % (tmp_path / "gw.sqlite") in out


def _gateway(*args):
    return subprocess.run([sys.executable, "-m", "tools.gateway", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_gateway_cli_refuses_a_mistyped_store_an_existing_out_and_a_file_not_sqlite(
        tmp_path, monkeypatch):
    monkeypatch.setenv("VITALNODE_DATA_KEY_FILE", str(tmp_path / "key"))
    typo = tmp_path / "gatway.sqlite"
    for cmd in (["export", "--out", tmp_path / "b.json"], ["patients"], ["access", "--patient",
                                                                          "P1", "--out",
                                                                          tmp_path / "a.json"]):
        err = _one_line_refusal(_gateway(cmd[0], "--db", typo, *cmd[1:]))
        assert "no store at %s" % typo in err
    assert not typo.exists() and not (tmp_path / "b.json").exists()

    db = tmp_path / "gw.sqlite"
    r = _gateway("admit", "--db", db, "--mrn", "M1", "--family", "Doe", "--birth-date",
                 "1950-01-02", "--ward", "W3", "--bed", "1")
    assert r.returncode == 0 and "making a new one" in r.stderr  # said, not silent
    out = tmp_path / "bundle.json"
    out.write_text("keep me")
    err = _one_line_refusal(_gateway("export", "--db", db, "--out", out))
    assert "%s exists: refusing to overwrite it" % out in err and "FORCE=1" in err
    assert out.read_text() == "keep me"
    assert _gateway("export", "--db", db, "--out", out, "--force").returncode == 0
    assert json.loads(out.read_text())["resourceType"] == "Bundle"

    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 100)
    err = _one_line_refusal(_gateway("patients", "--db", text))
    assert "%s is not a gateway store" % text in err
    assert text.read_text() == "this is not a database\n" * 100


def test_without_the_recordings_make_bench_says_what_is_missing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.bench", "all"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, VITALNODE_DATA=str(tmp_path / "none")))
    err = _one_line_refusal(r)
    assert err.startswith("bench: no recordings folder %s: " % (tmp_path / "none"))
    assert "physionet.org" in err and "VITALNODE_DATA=" in err and r.stdout == ""


def test_provisioning_and_the_ota_tools_share_one_development_site(tmp_path, monkeypatch):
    """make provision (and make ward) make the development site beside the
    registry; make ota-bundle without KEY signs with that site's key, so a
    node provisioned there accepts the bundle (it once used build/dev-site)."""
    reg = tmp_path / "data" / "registry.sqlite"
    env = dict(os.environ, VITALNODE_REGISTRY=str(reg))
    r = subprocess.run([sys.executable, "-m", "tools.ota", "build", "--out", str(tmp_path / "b")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    key = reg.parent / "dev-site" / "ota_private.pem"
    assert ("development key %s" % key) in r.stdout and key.exists()
    # provisioning's own choice, as tools/provision/__main__.py makes it
    from tools.provision.registry import Registry
    from tools.provision.site import default_dev_site_dir
    monkeypatch.setenv("VITALNODE_REGISTRY", str(reg))
    assert default_dev_site_dir() == Registry(reg).path.parent / "dev-site" == key.parent
