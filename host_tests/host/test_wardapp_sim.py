"""`make sim WARD=1`: a newcomer watches the simulated node live in the
ward app - the sim prints the app's address and a log-in for the run, and
the node's frames reach the clinician's overview while it runs."""
import re
import signal
import subprocess
import sys
import threading

import requests

from host_tests.host.wardhelp import wait
from tools.broker import free_port
from tools.paths import ROOT


def test_sim_ward_shows_the_simulated_node_live(tmp_path, sim_args, dev_site_dir):
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "tools.sim", "--runtime", "cpython", "--duration",
                          "12", "--ward", "--ward-port", str(port), "--power-save", "off", "--out",
                          str(tmp_path / "summary.json"), *sim_args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True).start()
    try:
        url = wait(lambda: next((x.split("ward app: ")[1].strip() for x in lines
                                 if x.startswith("ward app: https")), None), 60)
        assert url == "https://localhost:%d/" % port
        who = wait(lambda: next((re.search(r"(sim\.nurse) / (\S+),", x) for x in lines
                                 if "sim.nurse" in x), None), 5)
        s = requests.Session()
        s.trust_env, s.verify = False, str(dev_site_dir / "ca.pem")
        pre = re.search(r'name="pre" value="([^"]+)"', s.get(url + "login").text).group(1)
        r = s.post(url + "login", data={"name": who.group(1), "password": who.group(2),
                                        "pre": pre}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/overview"

        def live_tile():
            tiles = s.get(url + "api/overview").json()["tiles"]
            return tiles if tiles and tiles[0]["seq"] and tiles[0]["connection"] == "live" \
                else None
        tiles = wait(live_tile, 30, step=0.5)
        assert tiles[0]["label"] == "SIM bed 1" and tiles[0]["spo2"]
        wait(lambda: any("the ward app stays up until Ctrl-C" in x for x in lines), 30, step=0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
    assert rc == 0, "".join(lines[-20:])
