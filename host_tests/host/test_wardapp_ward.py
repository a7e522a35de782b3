"""`make ward` serves the web app beside mosquitto and the gateway: over
HTTPS with a certificate the site CA signed for the site's host name, its
URL printed on a line starting `ward app: `."""
import json
import shutil

import requests

from host_tests.host.wardhelp import site
from tools.broker import free_port
from tools.ward import Ward


def test_make_ward_serves_the_app_over_https_from_the_site_ca(tmp_path):
    s = tmp_path / "site" / "site.json"
    shutil.copytree(site().parent, s.parent)  # this test's own copy of the run's site
    cfg = json.loads(s.read_text())
    cfg["broker"] = {"host": "localhost", "port": free_port()}
    s.write_text(json.dumps(cfg))
    lines = []
    w = Ward(s, tmp_path / "registry.sqlite", workdir=tmp_path / "ward", listen="127.0.0.1",
             log=lines.append, app_port=free_port()).start()
    try:
        url = [x for x in lines if x.startswith("ward app: ")][0][len("ward app: "):]
        assert url.startswith("https://localhost:")
        sess = requests.Session()
        sess.trust_env = False
        r = sess.get(url + "login", verify=str(s.parent / "ca.pem"), timeout=10)
        assert r.status_code == 200 and 'name="password"' in r.text
        assert any("no users yet: make ward-user" in x for x in lines)
    finally:
        w.stop()
