"""The Python requirements: every package the tools and tests import is a
listed direct dependency, the run-time targets get only requirements/run.txt
(no node, no npm), and every pin carries its hashes (tools/depcheck.py)."""
import subprocess

from tools import depcheck
from tools.paths import ROOT


def test_every_import_of_the_tools_and_tests_is_a_listed_requirement():
    assert depcheck.problems() == []


def test_an_import_no_listed_requirement_provides_is_reported(tmp_path):
    f = tmp_path / "plot.py"
    f.write_text("import json\n\n\ndef draw():\n    import matplotlib.pyplot as plt\n"
                 "    import simboard\n    import nosuch_package_xyz\n    return plt\n")
    found = depcheck.unlisted([f], {"numpy"}, local={"simboard"}, mp=set())
    assert [(line, msg.split(",")[0]) for _, line, msg in found] == [
        (5, "imports matplotlib (from matplotlib)"), (7, "imports nosuch_package_xyz")]
    assert "requirements/*.in does not list" in found[0][2]
    # listed: only the unknown name is left
    found = depcheck.unlisted([f], {"matplotlib"}, local={"simboard"}, mp=set())
    assert [line for _, line, _ in found] == [7]


def test_run_time_code_reaches_its_imports_through_the_tools_package(tmp_path):
    """What `make ward` runs may import only run.in's packages: the modules
    an entry point reaches, late imports too, are the ones checked."""
    (tmp_path / "tools" / "gateway").mkdir(parents=True)
    (tmp_path / "tools" / "__init__.py").write_text("")
    (tmp_path / "tools" / "ward.py").write_text("from tools.gateway import store\n")
    (tmp_path / "tools" / "gateway" / "__init__.py").write_text("")
    (tmp_path / "tools" / "gateway" / "store.py").write_text(
        "def chart():\n    from tools.gateway import plot\n")
    (tmp_path / "tools" / "gateway" / "plot.py").write_text("import matplotlib\n")
    (tmp_path / "tools" / "sim.py").write_text("import wfdb\n")  # not reached
    files = depcheck.reached(["tools.ward"], tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "tools/__init__.py", "tools/gateway/__init__.py", "tools/gateway/plot.py",
        "tools/gateway/store.py", "tools/ward.py"]
    found = depcheck.unlisted(files, {"paho-mqtt"}, local={"tools"}, mp=set())
    assert [(f.name, line) for f, line, _ in found] == [("plot.py", 1)]


def test_a_pin_without_a_hash_is_seen(tmp_path):
    f = tmp_path / "run.txt"
    f.write_text("attrs==26.1.0 \\\n    --hash=sha256:%s \\\n    --hash=sha256:%s\n"
                 "    # via aiohttp\nidna==3.20\n    # via requests\n" % ("a" * 64, "b" * 64))
    assert depcheck.pins(f) == {"attrs": ("26.1.0", 2), "idna": ("3.20", 0)}


def test_the_run_in_file_lists_the_run_time_packages_by_name():
    run = depcheck.direct(ROOT / "requirements" / "run.in")
    assert {"cryptography", "paho-mqtt", "pyserial", "esptool", "mpremote", "starlette"} <= run
    # tests, the simulator and lint are development needs
    assert not {"pytest", "matplotlib", "wfdb", "ruff", "selenium"} & run
    assert run < depcheck.direct(ROOT / "requirements" / "dev.in")


def test_make_ward_installs_the_run_time_packages_only_and_no_node():
    # -n: print, do not run; -B: every step, as on a fresh machine
    r = subprocess.run(["make", "-nB", "ward"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "-r requirements/run.txt" in r.stdout and "--require-hashes" in r.stdout
    for other in ("dev.txt", "npm", "nodejs", "node_modules", "mpbuild", "mpstubs"):
        assert other not in r.stdout, (other, r.stdout)
