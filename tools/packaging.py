"""The mip `package.json` at the repository root, generated from the tree:

    python -m tools.packaging          # rewrite package.json
    python -m tools.packaging --check  # exit 1 if it is out of date

A user installs the node from a checkout or a GitHub copy with the real
mpremote (it fetches on the host, so the board needs no WiFi yet):

    mpremote connect PORT mip install --target / github:OWNER/vitalnode
    mpremote connect PORT mip install --target / ./package.json

Every device file goes to the same path on the board as in the repo
(boot.py, main.py, firmware/, lib/; relative URLs, so any copy of the repo
serves itself) and umqtt.simple comes from the micropython-lib index at
the version tools/deps.py pins. mip copies source (.py): the board compiles
it at import, which costs heap; `make deploy` (.mpy) or the frozen build
(manifest.py) is what a node on a patient should run.
"""
import json
import sys

from tools.deps import UMQTT
from tools.paths import LIB, ROOT, device_files

PACKAGE_JSON = ROOT / "package.json"


def mip_package():
    ns = {}
    exec((ROOT / "firmware" / "version.py").read_text(), ns)
    files = [p.relative_to(ROOT).as_posix() for p in device_files()
             if (LIB / "umqtt") not in p.parents]
    return {"version": ns["VERSION"],
            "urls": [[f, f] for f in files],
            "deps": [["umqtt.simple", UMQTT["version"]]]}


def render(pkg):
    """One file per line, so a diff shows what a release adds or drops."""
    rows = ",\n".join("    " + json.dumps(u) for u in pkg["urls"])
    return ('{\n  "version": %s,\n  "urls": [\n%s\n  ],\n  "deps": %s\n}\n'
            % (json.dumps(pkg["version"]), rows, json.dumps(pkg["deps"])))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    pkg = mip_package()
    text = render(pkg)
    if "--check" in argv:
        if not PACKAGE_JSON.exists() or PACKAGE_JSON.read_text() != text:
            print("package.json is out of date: run python -m tools.packaging", file=sys.stderr)
            return 1
        return 0
    PACKAGE_JSON.write_text(text)
    print("package.json: %d files, version %s" % (len(pkg["urls"]), pkg["version"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
