"""The ward app beside a simulation (`make sim WARD=1`): each simulated node
is on a demo patient of ward SIM (tools/sim/world.py admits them), and two
users are made for the run
with random passwords printed once (a clinician and a technician; the
store is the simulation's throw-away one under build/sim).

    app = start_demo(store, registry_path, site_dir, devices, workdir, port=8443, log=print)
    ... the simulation runs ...
    app.stop()
"""
import secrets

from tools.wardapp.app import WardApp
from tools.wardapp.server import Server


class Demo:
    def __init__(self, app, server):
        self.app, self.server = app, server

    def stop(self):
        self.app.stop()
        self.server.stop()


def start_demo(store, registry_path, site_dir, devices, workdir, port=8443, log=print,
               escalate_after=120.0):
    import time
    app = WardApp(store, registry_path, escalate_after=escalate_after, log=log)
    with store.db.tx() as c:
        c.execute("INSERT INTO ward_wards VALUES ('SIM', ?) ON CONFLICT (name) DO NOTHING",
                  (time.time(),))
    creds = []
    for name, role, wards in (("sim.nurse", "clinician", ["SIM"]), ("sim.tech", "technician", [])):
        otp = app.users.create(name, role, wards, actor="sim")
        pw = secrets.token_urlsafe(12)
        app.users.set_password(name, otp, pw)
        creds.append("%s / %s" % (name, pw))
    app.start()
    srv = Server(app.app, site_dir, workdir, host="localhost", port=port).start()
    log("ward app: %s" % srv.url)
    log("ward app: log in as %s (this run only; the certificate is from %s/ca.pem)"
        % (", or ".join(creds), site_dir))
    return Demo(app, srv)
