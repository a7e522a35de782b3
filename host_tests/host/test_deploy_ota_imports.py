"""`make deploy` (tools/deploy.py) and the OTA builder (tools/ota/bundle.py)
share the device tree through its one home, tools/devicetree.py, and
neither imports the other: each loads alone in a fresh interpreter, and
deploy's version for the OTA state no longer pulls in the signing code."""
import ast
import json
import subprocess
import sys

from tools.paths import ROOT


def _tools_imports(rel):
    """Every tools.* module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse((ROOT / rel).read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {node.module + "." + a.name for a in node.names}
    return {n for n in names if n.startswith("tools.")}


def test_neither_module_imports_the_other_and_both_use_the_tree_s_one_home():
    deploy, bundle = _tools_imports("tools/deploy.py"), _tools_imports("tools/ota/bundle.py")
    assert [n for n in deploy if n.startswith("tools.ota")] == []
    assert [n for n in bundle if n.startswith("tools.deploy")] == []
    assert "tools.devicetree" in deploy and "tools.devicetree" in bundle


_ALONE = r"""
import json, sys
which = sys.argv[1]
if which == "deploy":
    import tools.deploy as m
    code = m.version_code()              # what make deploy records in the OTA state
else:
    import tools.ota.bundle as m
    code = m.tree_version()
from tools import devicetree
print(json.dumps({"code": code, "one_home": m.stage is devicetree.stage,
                  "loaded": sorted(n for n in sys.modules
                                   if n in ("tools.deploy", "tools.ota.bundle", "tools.ota"))}))
"""


def _alone(which):
    r = subprocess.run([sys.executable, "-c", _ALONE, which], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_deploy_loads_alone_and_versions_the_tree_without_the_ota_builder():
    got = _alone("deploy")
    assert got["loaded"] == ["tools.deploy"]
    assert got["one_home"] is True
    assert isinstance(got["code"], int) and got["code"] > 0


def test_the_ota_builder_loads_alone_without_deploy():
    got = _alone("bundle")
    assert got["loaded"] == ["tools.ota", "tools.ota.bundle"]
    assert got["one_home"] is True
    version = (ROOT / "firmware" / "version.py").read_text()
    assert 'VERSION = "%s"' % got["code"] in version
