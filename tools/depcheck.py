"""Every package the host tools and the tests import is a direct dependency
in requirements/*.in, and what the run-time targets import is in run.in.

requirements/run.in lists what the ward, the gateway, provisioning,
flashing and OTA import (`make ward` and the other run-time targets install
only its compiled requirements/run.txt); dev.in adds what tests, benchmarks,
the simulator and lint need. This reads every import in tools/ and
host_tests/ (at any depth: a function's late import counts) and checks:

- an import provided by an installed distribution names a distribution
  listed in run.in or dev.in (a package that only arrives as something
  else's dependency may vanish with the next pin);
- an import nobody provides is the repository's own module (device code,
  shims, test helpers) or a MicroPython one (scripts run on the VMs);
- the modules the run-time entry points reach (following `tools.` imports)
  import only what run.in lists;
- run.txt and dev.txt pin every package, each with its sha256 hashes, run.in's
  direct dependencies are in run.txt, and dev.txt pins the same versions.

    python -m tools.depcheck      (prints each problem; exit status 1 if any)
"""
import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tools.paths import ROOT

REQ = ROOT / "requirements"
SCANNED = ("tools", "host_tests")
# the entry points of the run-time make targets (deps-run in the Makefile)
RUN_ENTRIES = ("tools.ward", "tools.gateway.__main__", "tools.provision.__main__", "tools.flash",
               "tools.deploy", "tools.ota.__main__", "tools.wardapp.__main__")
# folders whose modules are imported by their bare names (sys.path entries of
# the VMs, the shims and the tests)
_LOCAL_DIRS = ("", "lib", "tools/shims", "tools/emu", "tools/vm", "host_tests/device", "host_tests/host")
# imported, but neither installed from PyPI nor a file of ours
NOT_PYPI = {
    "emuhost": "the Node host's module inside the emulated device (tools/emu/device.mjs)",
    "manifestfile": "MicroPython's manifest tool, from its source tree (tools/vm/esp32_modules.py)",
}


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def direct(path):
    """Normalised names of the requirements a .in file lists (and the
    files it includes with -r)."""
    out = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out |= direct(Path(path).parent / line[3:].strip())
        elif line:
            out.add(norm(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return out


def pins(path):
    """{name: (version, number of hashes)} of a compiled requirements file."""
    out = {}
    for entry in re.split(r"\n(?=\S)", Path(path).read_text()):
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", entry)
        if m:
            out[norm(m.group(1))] = (m.group(2), len(re.findall(r"--hash=sha256:[0-9a-f]{64}", entry)))
    return out


def imports(path):
    """Top-level names `path` imports, at any depth, absolute imports only."""
    tree = ast.parse(Path(path).read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def local_names(root=ROOT):
    names = {"tools", "host_tests", "firmware"}
    for d in _LOCAL_DIRS:
        for p in (root / d).iterdir() if (root / d).is_dir() else ():
            if p.suffix == ".py":
                names.add(p.stem)
            elif (p / "__init__.py").exists():
                names.add(p.name)
    return names


def micropython_names():
    from tools.vm.esp32_modules import device_allowed
    return device_allowed() | {"micropython", "uctypes", "ffi", "termios", "jni"}


def unlisted(files, listed, local, mp, provided=None):
    """(file, line, message) for each import of `files` no listed
    requirement provides."""
    provided = packages_distributions() if provided is None else provided
    std = set(sys.stdlib_module_names)
    out = []
    for f in files:
        for top, line in imports(f):
            if top in std or top in local or top in NOT_PYPI:
                continue
            dists = provided.get(top)
            if dists:
                if not {norm(d) for d in dists} & listed:
                    out.append((f, line, "imports %s (from %s), which requirements/*.in does not list"
                                % (top, " or ".join(sorted(set(dists))))))
            elif top not in mp:
                out.append((f, line, "imports %s, which is not installed, not the repository's own "
                            "and not MicroPython's" % top))
    return out


def _module_file(name, root=ROOT):
    p = root.joinpath(*name.split("."))
    for f in (p / "__init__.py", p.with_suffix(".py")):
        if f.exists():
            return f
    return None


def reached(entries, root=ROOT):
    """The files the modules `entries` reach through `tools.` imports."""
    seen = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        f = _module_file(name, root)
        if name in seen or f is None:
            continue
        seen[name] = f
        pkg = name if f.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                mods = [base] + [base + "." + a.name for a in node.names]
            for m in mods:
                parts = m.split(".")
                if parts[0] == "tools":
                    todo += [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
    return sorted(set(seen.values()))


def problems(root=ROOT):
    out = []
    run_in, dev_in = direct(REQ / "run.in"), direct(REQ / "dev.in")
    run_txt, dev_txt = pins(REQ / "run.txt"), pins(REQ / "dev.txt")
    local, mp = local_names(root), micropython_names()
    files = sorted(p for d in SCANNED for p in (root / d).rglob("*.py")
                   if "node_modules" not in p.parts)
    for f, line, msg in unlisted(files, run_in | dev_in, local, mp):
        out.append("%s:%d: %s" % (f.relative_to(root), line, msg))
    for f, line, msg in unlisted(reached(RUN_ENTRIES, root), run_in, local, mp):
        out.append("%s:%d: %s; run-time code: it must be in requirements/run.in (make ward "
                   "installs only that)" % (f.relative_to(root), line, msg.split(", which")[0]))
    for name, pinned in (("run.txt", run_txt), ("dev.txt", dev_txt)):
        for pkg, (ver, hashes) in sorted(pinned.items()):
            if not hashes:
                out.append("requirements/%s: %s==%s has no hash" % (name, pkg, ver))
    for pkg in sorted(run_in - set(run_txt)):
        out.append("requirements/run.txt does not pin %s (run.in lists it): make requirements" % pkg)
    for pkg in sorted(dev_in - set(dev_txt)):
        out.append("requirements/dev.txt does not pin %s (dev.in lists it): make requirements" % pkg)
    for pkg, (ver, _) in sorted(run_txt.items()):
        if pkg in dev_txt and dev_txt[pkg][0] != ver:
            out.append("requirements/dev.txt pins %s==%s, run.txt %s: make requirements"
                       % (pkg, dev_txt[pkg][0], ver))
        elif pkg not in dev_txt:
            out.append("requirements/dev.txt does not pin %s (run.txt does): make requirements" % pkg)
    return out


def main():
    found = problems()
    for line in found:
        print(line)
    print("depcheck: %s" % ("%d problem(s)" % len(found) if found else "every import is a listed requirement"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
