"""`make help` is generated from the Makefile: every public target (each
.PHONY target except the HELPERS prerequisites), as make itself reads the
Makefile, is listed with its help text, and a target added without help
is caught before it ships (tools/makehelp.py)."""
import re
import subprocess
import sys

from tools.paths import ROOT


def _make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _make_database_words(makefile, name):
    """The words of `name` as make's own database has them (make -p, nothing run)."""
    out = _make("-prRn", "-f", str(makefile), "help").stdout
    m = re.search(r"^%s *:=? *(.*)$" % re.escape(name), out, re.M)
    assert m, "make's database has no %s" % name
    return m.group(1).split()


def _help_entries(text):
    """{target: first line of help} from `make help`'s output."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^make (\S+) +(\S.*)$", text, re.M)}


def test_make_help_lists_every_public_target_with_its_help():
    phony = _make_database_words(ROOT / "Makefile", ".PHONY")
    helpers = _make_database_words(ROOT / "Makefile", "HELPERS")
    public = [t for t in phony if t not in helpers]
    assert {"sim", "test", "deps", "provision", "ota-bundle", "ward", "export", "help"} <= set(public)

    run = _make("help")
    assert run.returncode == 0, run.stderr
    entries = _help_entries(run.stdout)
    assert [t for t in public if t not in entries] == []
    assert [t for t in helpers if t in entries] == []  # prerequisites are not offered to users
    assert "DURATION=600" in run.stdout  # the option lines under a target are kept


def test_the_real_makefile_passes_the_check():
    run = subprocess.run([sys.executable, "tools/makehelp.py", "--check", "Makefile"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")


def test_a_target_added_without_help_is_caught_and_with_help_is_listed(tmp_path):
    base = (ROOT / "Makefile").read_text()
    bare = tmp_path / "Makefile.bare"
    bare.write_text(base + "\n.PHONY: frobnicate\nfrobnicate: deps\n\t@true\n")
    run = subprocess.run([sys.executable, "tools/makehelp.py", "--check", str(bare)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "make frobnicate has no `## ` help" in run.stderr

    helped = tmp_path / "Makefile.helped"
    helped.write_text(base + "\n.PHONY: frobnicate\n## N=3  frob the widgets\n##   -> build/frob\n"
                             "frobnicate: deps\n\t@true\n")
    run = _make("-f", str(helped), "help")
    assert run.returncode == 0, run.stderr
    assert _help_entries(run.stdout)["frobnicate"] == "N=3  frob the widgets"
    assert "\n" + " " * 22 + "-> build/frob\n" in run.stdout  # continuation keeps its indent


def test_a_helper_that_is_not_a_rule_is_reported(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("HELPERS := gone\n.PHONY: a\n## the a target\na:\n\t@true\n")
    run = subprocess.run([sys.executable, "tools/makehelp.py", "--check", str(mk)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "HELPERS names gone" in run.stderr
