"""`make ward-bench`: is the overview still responsive with many nodes?

    python -m tools.wardapp.bench [--nodes 200] [--seconds 20] [--period 1.0]
        -> build/wardapp/bench.json, and one line per figure

A ward in a temporary directory: N provisioned devices, each on a patient
of one ward, the app over HTTPS on loopback. N simulated publishers send a
signed vitals frame every --period seconds (default 1 s: five times a
node's real rate), judged and stored by the gateway's handle_many() in
batches as its MQTT subscriber stores them (the broker is not in this
figure: `make loadtest` measures it). Meanwhile a clinician's live stream
counts tile events and their delay from store to receipt, and the overview
is loaded repeatedly: the JSON API over HTTPS, and (with Debian's chromium)
the page in a headless browser until every tile is drawn.

Figures: overview_api_ms p50/p95, browser_load_ms p50/p95 (or null
without chromium), events_per_s offered and received, event_delay_ms
p50/p95, frames stored.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path


def _pct(v, q):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1) if v else None


def run(nodes=200, seconds=20.0, period=1.0, log=print):
    import requests

    from tools.broker import free_port
    from tools.gateway.core import Gateway
    from tools.paths import BUILD
    from tools.provision import keys
    from tools.provision.registry import Registry
    from tools.provision.site import dev_site
    from tools.wardapp.app import WardApp
    from tools.wardapp.server import Server
    from firmware import frames

    tmp = Path(tempfile.mkdtemp(prefix="vn-ward-bench-"))
    site = dev_site(BUILD / "dev-site")
    reg_path = tmp / "registry.sqlite"
    devs = ["24%010x" % (0xbe000000 + i) for i in range(nodes)]
    tk = {}
    with Registry(reg_path) as reg:
        for d in devs:
            sub = keys.subkeys(keys.new_root(), d)
            reg.begin(d, 1, sub, "esp32", False)
            reg.activate(d)
            tk[d] = sub["telemetry"]
    gw = Gateway(reg_path, str(tmp / "gw.sqlite"))
    st = gw.store
    t0 = int(time.time()) - 60
    for i, d in enumerate(devs):
        p = st.admit("B-%d" % i, "Bench", ["Pat"], "1970-01-01", "W1", str(i + 1), actor="bench")
        st.assign(p["id"], d, "bench", start=t0)
    app = WardApp(st, reg_path, log=log)
    pw = secrets.token_urlsafe(16)
    app.users.set_password("bench.nurse", app.users.create("bench.nurse", "clinician", ["W1"],
                                                           actor="bench"), pw)
    app.start()
    srv = Server(app.app, site.parent, tmp / "app", port=free_port()).start()
    url = srv.url.rstrip("/")
    ca = str(site.parent / "ca.pem")
    seq = dict.fromkeys(devs, 0)

    def frame(d):
        seq[d] += 1
        h = (bytes.fromhex(d), seq[d], int(time.time()), seq[d] * 1000, frames.T_WALL)
        body = frames.vitals(h, 600 + seq[d] % 400, 960, 90, 0, [], 3, 1, 90, 90)
        return "vn/%s/tm" % d, frames.seal(body, lambda b: hmac.new(tk[d], b, hashlib.sha256)
                                           .digest())

    for d in devs:  # every tile has a reading before the clock starts
        gw.handle_many([frame(d)])

    s = requests.Session()
    s.trust_env, s.verify = False, ca
    pre = re.search(r'name="pre" value="([^"]+)"', s.get(url + "/login").text).group(1)
    s.post(url + "/login", data={"name": "bench.nurse", "password": pw, "pre": pre})
    events, delays = [], []
    stop = threading.Event()

    def listen():
        r = s.get(url + "/api/events", stream=True, timeout=seconds + 30)
        ev = None
        try:
            for line in r.iter_lines(decode_unicode=True):
                if stop.is_set():
                    break
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("data: ") and ev == "tile":
                    now = time.time()
                    t = json.loads(line[6:])
                    events.append(now)
                    if t.get("stored_at"):
                        delays.append((now - t["stored_at"]) * 1000)
        except requests.RequestException:
            pass  # the app ended the stream at shutdown
        r.close()

    lt = threading.Thread(target=listen, daemon=True)
    lt.start()
    time.sleep(0.5)  # the stream is open before the first frame
    stored = [0]

    def publish():
        t_end = time.monotonic() + seconds
        tick, slices = 0, 10
        while time.monotonic() < t_end:
            batch = [frame(d) for i, d in enumerate(devs) if i % slices == tick % slices]
            stored[0] += gw.handle_many(batch).count("stored")
            tick += 1
            nxt = time.monotonic() + period / slices
            time.sleep(max(0, nxt - time.monotonic()))

    pt = threading.Thread(target=publish, daemon=True)
    t_start = time.time()
    pt.start()
    # the page in chromium while the publishers run
    browser_ms = _browser(url, pw, nodes) if os.path.exists("/usr/bin/chromium") else []
    api_ms = []
    s2 = requests.Session()
    s2.trust_env, s2.verify = False, ca
    s2.cookies.update(s.cookies)
    while pt.is_alive():
        a = time.monotonic()
        r = s2.get(url + "/api/overview", timeout=30)
        assert len(r.json()["tiles"]) == nodes
        api_ms.append((time.monotonic() - a) * 1000)
        time.sleep(0.5)
    pt.join()
    t_pub = time.time() - t_start
    stop.set()
    got_in_window = [e for e in events if t_start <= e <= t_start + t_pub]
    app.stop()
    srv.stop()
    gw.close()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    out = {"nodes": nodes, "seconds": round(t_pub, 1), "period_s": period,
           "frames_stored": stored[0],
           "events_per_s_offered": round(stored[0] / t_pub, 1),
           "events_per_s_received": round(len(got_in_window) / t_pub, 1),
           "event_delay_ms_p50": _pct(delays, 0.5), "event_delay_ms_p95": _pct(delays, 0.95),
           "overview_api_ms_p50": _pct(api_ms, 0.5), "overview_api_ms_p95": _pct(api_ms, 0.95),
           "browser_load_ms_p50": _pct(browser_ms, 0.5),
           "browser_load_ms_p95": _pct(browser_ms, 0.95),
           "browser_loads": len(browser_ms)}
    return out


def _browser(url, pw, nodes, n=5):
    """Milliseconds from navigation to every tile drawn, n times (while the
    publishers run)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,800", "--ignore-certificate-errors"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=o)
    try:
        d.get(url + "/login")
        d.find_element(By.NAME, "name").send_keys("bench.nurse")
        d.find_element(By.NAME, "password").send_keys(pw)
        d.find_element(By.CSS_SELECTOR, "form button").click()
        out = []
        for _ in range(n):
            a = time.monotonic()
            d.get(url + "/overview")
            while d.execute_script("return document.querySelectorAll('.tile').length") < nodes:
                if time.monotonic() - a > 30:
                    raise RuntimeError("the overview did not draw %d tiles in 30 s" % nodes)
                time.sleep(0.01)
            out.append((time.monotonic() - a) * 1000)
        return out
    finally:
        d.quit()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.wardapp.bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if not (1 <= a.nodes <= 2000 and 2 <= a.seconds <= 600 and 0.1 <= a.period <= 60):
        print("ward bench: error: --nodes 1-2000, --seconds 2-600, --period 0.1-60",
              file=sys.stderr)
        return 2
    from tools.paths import BUILD
    out = Path(a.out) if a.out else BUILD / "wardapp" / "bench.json"
    r = run(a.nodes, a.seconds, a.period, log=lambda s: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    print("ward bench: %d nodes, a frame each every %g s for %.0f s: %d frames stored"
          % (r["nodes"], r["period_s"], r["seconds"], r["frames_stored"]))
    print("  live events: %.1f/s offered, %.1f/s received by one clinician's stream; store -> "
          "event delay p50 %s ms, p95 %s ms" % (r["events_per_s_offered"],
                                               r["events_per_s_received"],
                                               r["event_delay_ms_p50"], r["event_delay_ms_p95"]))
    print("  overview API (all %d tiles, HTTPS): p50 %s ms, p95 %s ms" % (
        r["nodes"], r["overview_api_ms_p50"], r["overview_api_ms_p95"]))
    print("  overview page in chromium until every tile is drawn: %s" % (
        "p50 %s ms, p95 %s ms (%d loads)" % (r["browser_load_ms_p50"], r["browser_load_ms_p95"],
                                            r["browser_loads"])
        if r["browser_loads"] else "not measured (no /usr/bin/chromium)"))
    print("written %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
