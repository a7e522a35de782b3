"""Compile layer: every device module (firmware/, lib/, boot.py, main.py)
through `mpy-cross -march=xtensawin`, plus static rules mpy-cross cannot see:

- imports: only modules the ESP32 firmware has - built in, or frozen both
  in the stock build and in ours - derived from the 1.27 release's sources
  (tools/vm/esp32_modules.py), or the project's own (firmware package, lib/ modules); `from typing import`
  compiles but fails on the chip, so it is rejected here;
- `time.<attr>`: only the MicroPython ticks/sleep API (time.time/time.sleep
  would read the host clock under CPython and differ from the VMs);
- lib/ module names may not shadow a CPython standard module (lib/ sits on
  sys.path under pytest).

With --lint (`make test`, `make test-compile`) two more checks follow, each
counted as one: ruff over the whole tree (ruff.toml) and pyright over the
device code, typed against MicroPython 1.27's ESP32 stubs
(pyrightconfig.json); given files, both look at those files only. Both are
development tools (ruff pinned with the Python requirements, pyright in
tools/package.json), as are the stubs (requirements/mpstubs.txt): `make deploy`
and the OTA tools compile without them.

    python -m tools.compile_check [--out build/mpy] [--lint] [file ...]

Prints `file:line: message` per problem and `compile: N passed, N failed`.
"""
import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

from tools.paths import BUILD, LIB, ROOT, STAGE0_FILES, device_files, venv_tool
from tools.vm.esp32_modules import TIME_ATTRS, device_allowed


# umqtt.simple reports protocol errors by `assert` (firmware/uplink.py
# relies on it), which -O1 and up would strip
_KEEP_ASSERTS = ("lib/umqtt/",)


def mpy_opts(src):
    """mpy-cross options for a device file as `make deploy` ships it: -O3
    drops the line-number tables (about 2.3 KB of the node's heap when the
    firmware runs as .mpy files; tracebacks still name the file and the
    function), except where asserts carry meaning. The frozen build keeps
    its line numbers: its bytecode is in flash."""
    return [] if src.startswith(_KEEP_ASSERTS) else ["-O3"]


def project_modules():
    names = {"firmware", "boot", "main"} | {f[:-3] for f in STAGE0_FILES}
    for p in (LIB.iterdir() if LIB.is_dir() else ()):
        if p.suffix == ".py":
            names.add(p.stem)
        elif p.is_dir() and p.name != "__pycache__":
            names.add(p.name)
    return names


def rule_problems(path: Path, src: str, allowed):
    try:
        tree = ast.parse(src, str(path))
    except SyntaxError as e:
        return [(e.lineno or 0, "CPython cannot parse it (the CPython test layer would fail): %s"
                 % e.msg)]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top not in allowed:
                    out.append((node.lineno, "imports %r, which the ESP32 firmware does not have"
                                % a.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if top not in allowed:
                    out.append((node.lineno, "imports from %r, which the ESP32 firmware does not "
                                "have" % node.module))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "time" and node.attr not in TIME_ATTRS:
            out.append((node.lineno, "uses time.%s; device code uses ticks_ms/ticks_us/"
                        "ticks_diff/sleep_ms/sleep_us (the virtual clock)" % node.attr))
    return out


MPSTUBS = ROOT / ".cache" / "mpstubs"  # pyrightconfig.json's typeshedPath and stubPath
PYRIGHT = ROOT / "tools" / "node_modules" / ".bin" / "pyright"


def _rel(path):
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def ruff_problems(files=()):
    """`file:line: ruff CODE message` lines for the tree (or `files`)."""
    r = subprocess.run([venv_tool("ruff"), "check", "--no-cache", "--output-format", "json",
                        "--config", str(ROOT / "ruff.toml")] + ([str(f) for f in files] or ["."]),
                       cwd=ROOT, capture_output=True, text=True)
    try:
        found = json.loads(r.stdout)
    except ValueError:
        return ["ruff: did not run (%s); `make deps` installs it"
                % (r.stderr.strip().splitlines() or ["no output"])[-1]]
    return ["%s:%d: ruff %s %s" % (_rel(d["filename"]), d["location"]["row"], d["code"], d["message"])
            for d in found]


def pyright_problems(files=()):
    """`file:line: pyright message (rule)` lines for the device code (or
    `files`), against the ESP32 stubs."""
    if not PYRIGHT.exists() or not MPSTUBS.is_dir():
        return ["pyright: %s is missing; `make deps` installs it"
                % (_rel(PYRIGHT) if not PYRIGHT.exists() else _rel(MPSTUBS))]
    r = subprocess.run([str(PYRIGHT), "--outputjson", "--project", str(ROOT / "pyrightconfig.json")]
                       + [str(f) for f in files], cwd=ROOT, capture_output=True, text=True)
    try:
        found = json.loads(r.stdout)["generalDiagnostics"]
    except (ValueError, KeyError):
        return ["pyright: did not run (%s)" % (r.stderr or r.stdout).strip()[-300:]]
    return ["%s:%d: pyright %s (%s)" % (_rel(d["file"]), d["range"]["start"]["line"] + 1,
                                          d["message"].splitlines()[0], d.get("rule", d["severity"]))
            for d in found if d["severity"] == "error"]


def main(argv=None):
    ap = argparse.ArgumentParser(description="mpy-cross + ESP32 rules over the device tree")
    ap.add_argument("--out", default=str(BUILD / "mpy"))
    ap.add_argument("--lint", action="store_true", help="ruff and pyright too")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args(argv)
    files = [Path(f).resolve() for f in a.files] or device_files()
    from tools.mpbuild import BuildError
    try:
        allowed = device_allowed() | project_modules()
    except BuildError as e:
        print("compile: %s" % e)
        return 2
    mpy_cross = venv_tool("mpy-cross")
    passed = failed = 0
    stdlib = set(sys.stdlib_module_names)
    for p in LIB.glob("*.py"):
        if p.stem in stdlib:
            print("%s:1: lib module shadows CPython's standard module %r" % (p.relative_to(ROOT), p.stem))
            failed += 1
    for f in files:
        rel = f.relative_to(ROOT) if f.is_relative_to(ROOT) else Path(f.name)
        out = Path(a.out) / rel.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        problems = []
        # the source name as the repository names it (firmware/app.py): it is
        # stored in the .mpy and interned on the node, so it must not carry
        # the checkout's absolute path
        src = str(rel) if f.is_relative_to(ROOT) else str(f)
        r = subprocess.run([mpy_cross, "-march=xtensawin"] + mpy_opts(src) + ["-o", str(out), src],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            line = 0
            for m in msg:
                if 'line ' in m:
                    try:
                        line = int(m.rsplit("line ", 1)[1].split(",")[0].split()[0])
                    except ValueError:
                        pass
            problems.append((line, "mpy-cross: " + (msg[-1] if msg else "failed")))
        problems += rule_problems(f, f.read_text(), allowed)
        for line, msg in sorted(problems):
            print("%s:%d: %s" % (rel, line, msg))
        if problems:
            failed += 1
        else:
            passed += 1
    if a.lint:
        for check in (ruff_problems, pyright_problems):
            problems = check(a.files)
            for line in problems:
                print(line)
            if problems:
                failed += 1
            else:
                passed += 1
    print("compile: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
