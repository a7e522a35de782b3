"""`make ward`: the broker and gateway for real nodes on your network.

    python -m tools.ward [--site SITE.json] [--listen 0.0.0.0]
                         [--registry R] [--db build/ward/gateway.sqlite | DATABASE_URL]
                         [--retention-days N] [--app-port 8443 | 0]
                         [--escalate-after 120] [--notify-url URL]

Without --site, the development site `make provision` uses without
CONFIG= (dev-site next to the registry).

What `make sim` runs on loopback, for boards: mosquitto on the site's
broker port with TLS (a server certificate for the site's broker host,
signed by the site CA: ca.key next to ca_cert_file), per-device passwords
and the per-device ACL, and the gateway subscribed to it, printing each
node's vitals and every refusal as they arrive. Logins follow the
registry: every *active* device can log in; the ward looks for a registry
change every --poll seconds (0.25: one SQLite PRAGMA) and rebuilds the logins
when there is one, so a device provisioned while the ward runs can log in,
and a revoked one is locked out and its open session ended (mosquitto
drops a client whose login a reload removed), within a second (the gateway
refuses its frames from the moment of revocation anyway). Ctrl-C stops, quietly; the
frames stay in --db for `make export DB=... OUT=bundle.json`.

The store is --db, else $DATABASE_URL, else build/ward/gateway.sqlite
(patient data sealed; docs/patient-data.md). With --retention-days (or
$VITALNODE_RETENTION_DAYS) the ward purges older data at start and every
hour, each purge audited.

The ward web app (tools/wardapp, docs/ward.md) is served over HTTPS on
--app-port with a certificate from the site CA; its URL is printed on a
line starting `ward app: `. Users come from `make ward-user`.

Not a production broker: one process, its files under build/ward, a new
30-day server certificate per start.
"""
import argparse
import secrets
import signal
import sys
import time
from pathlib import Path

from tools.paths import BUILD


class WardError(Exception):
    pass


class Ward:
    def __init__(self, site_path, registry_path, workdir=BUILD / "ward", listen="0.0.0.0",
                 db=None, log=print, app_port=None, escalate_after=120.0, notify_url=None):
        from tools.provision.site import SiteError, load_site
        try:
            self.site = load_site(site_path)
        except SiteError as e:
            raise WardError(str(e))
        self.dir = Path(workdir)
        self.site_dir = (self.site["_dir"] / self.site["ca_cert_file"]).parent
        if not (self.site_dir / "ca.key").exists():
            raise WardError("no ca.key next to %s: the ward signs its server certificate with "
                            "the site CA" % self.site["ca_cert_file"])
        self.registry = registry_path
        self.listen = listen
        import os
        self.db = db or os.environ.get("DATABASE_URL") or self.dir / "gateway.sqlite"
        self.log = log
        self.gw_password = secrets.token_hex(16)
        self.broker = self.sub = self.app = self.web = None
        self._warned = set()
        self.app_port, self.escalate_after, self.notify_url = app_port, escalate_after, notify_url

    def logins(self):
        """{device id: password} of every active device. A registry row whose
        id is not a device id (12 lower-case hex digits) never becomes a login:
        it is skipped and reported, so it can neither take a service's
        place nor stop the ward."""
        from tools.provision.keys import broker_password, is_device_id
        from tools.provision.registry import Registry
        users = {}
        with Registry(self.registry) as reg:
            for d in reg.devices():
                dev = d["device_id"]
                if d["status"] != "active":
                    continue
                if not is_device_id(dev):
                    if dev not in self._warned:
                        self._warned.add(dev)
                        self.log("ward: ignoring registry entry %r: not a device id (12 "
                                 "lower-case hex digits); it gets no login" % (dev,))
                    continue
                users[dev] = broker_password(reg.key(dev, "broker"))
        return users

    def start(self):
        from tools.broker import Broker
        from tools.gateway.core import Gateway
        from tools.gateway.mqtt import Subscriber
        host, port = self.site["broker"]["host"], self.site["broker"]["port"]
        (self.dir / "broker").mkdir(parents=True, exist_ok=True)
        (self.dir / "broker" / "server.pem").unlink(missing_ok=True)  # new cert for this host
        self.broker = Broker(self.dir / "broker", self.site_dir, port=port, listen=self.listen,
                             host=host)
        self.broker.set_users({"gateway": self.gw_password})  # the service login
        self.broker.set_devices(self.logins())
        self.broker.start()
        self.gw = Gateway(self.registry, self.db, log=self.log)
        self.sub = Subscriber(self.gw, self.broker.local_address, port, self.site_dir / "ca.pem",
                              self.gw_password, live=self.log).start()
        self.log("ward: mosquitto on %s:%d for nodes that connect to %s:%d (TLS, per-device "
                 "logins and ACL); gateway subscribed, storing in %s"
                 % (self.listen, port, host, port, self.db))
        self.log("ward: %d active device(s) may log in" % (len(self.broker.users) - 1))
        if self.app_port is not None:
            self.start_app()
        return self

    def start_app(self):
        """The web app (tools/wardapp) over HTTPS, certificate from the site CA."""
        from tools.wardapp.app import WardApp
        from tools.wardapp.live import Hook
        from tools.wardapp.server import Server
        self.app = WardApp(self.gw.store, self.registry, escalate_after=self.escalate_after,
                           notify=Hook(self.notify_url) if self.notify_url else None,
                           log=self.log).start()
        self.web = Server(self.app.app, self.site_dir, self.dir / "app",
                          host=self.site["broker"]["host"], port=self.app_port,
                          listen=self.listen).start()
        self.log("ward app: %s" % self.web.url)
        n = len(self.app.users.all())
        if not n:
            self.log("ward app: no users yet: make ward-user NAME=<name> ROLE=admin (then add "
                     "clinicians, technicians, auditors)")
        self.log("ward app: alerts escalate after %g s unacknowledged%s" % (
            self.escalate_after, " to %s" % self.notify_url if self.notify_url else
            " (no --notify-url: shown on the pages only)"))
    def changed(self):
        """True if another process committed to the registry since the last
        call (SQLite's data_version on a connection kept for this)."""
        import sqlite3
        if getattr(self, "_watch", None) is None:
            self._watch = sqlite3.connect(str(self.registry), check_same_thread=False)
            self._dv = None
        dv = self._watch.execute("PRAGMA data_version").fetchone()[0]
        changed, self._dv = dv != self._dv, dv
        return changed

    def follow(self):
        """One step of the ward's loop: sync if the registry changed (or
        every 30 s regardless). Call every --poll seconds."""
        now = time.monotonic()
        if self.changed() or now >= getattr(self, "_next_full", 0):
            self._next_full = now + 30
            return self.sync()
        return False

    def sync(self):
        """Follow the registry; returns True if the logins changed."""
        before = set(self.broker.users)
        if not self.broker.set_devices(self.logins()):
            return False
        now = set(self.broker.users)
        for d in sorted(now - before):
            self.log("ward: %s may log in now" % d)
        for d in sorted(before - now):
            self.log("ward: %s locked out (revoked or re-keyed)" % d)
        return True

    def stop(self):
        if self.app is not None:
            self.app.stop()
        if self.web is not None:
            self.web.stop()
        if getattr(self, "_watch", None) is not None:
            self._watch.close()
            self._watch = None
        if self.sub is not None:
            self.sub.stop()
        if self.broker is not None:
            self.broker.stop()


def main(argv=None):
    from tools.provision.registry import default_path
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", help="site configuration (JSON); default: the development site")
    ap.add_argument("--listen", default="0.0.0.0", help="address mosquitto binds")
    ap.add_argument("--registry")
    ap.add_argument("--db")
    ap.add_argument("--poll", type=float, default=0.25,
                    help="seconds between registry change checks (default 0.25)")
    import os
    env_days = os.environ.get("VITALNODE_RETENTION_DAYS")
    ap.add_argument("--retention-days", type=float, default=float(env_days) if env_days else None,
                    help="purge what is older (default: keep; $VITALNODE_RETENTION_DAYS)")
    ap.add_argument("--app-port", type=int, default=8443,
                    help="the ward web app's HTTPS port (0: no app)")
    ap.add_argument("--escalate-after", type=float, default=120.0,
                    help="seconds an alert may stay unacknowledged before it escalates")
    ap.add_argument("--notify-url", default=os.environ.get("VITALNODE_NOTIFY_URL"),
                    help="escalations are POSTed here as JSON ($VITALNODE_NOTIFY_URL)")
    a = ap.parse_args(argv)
    registry = Path(a.registry) if a.registry else default_path()
    signal.signal(signal.SIGINT, _interrupted)
    ward = None
    try:
        if a.site is None:
            from tools.provision.site import dev_site
            a.site = dev_site(registry.parent / "dev-site")
        ward = Ward(a.site, registry, listen=a.listen, db=a.db,
                    app_port=a.app_port or None, escalate_after=a.escalate_after,
                    notify_url=a.notify_url)
        ward.start()
    except KeyboardInterrupt:  # Ctrl-C while starting: what started is stopped
        if ward is not None:
            ward.stop()
        print("ward: interrupted while starting; stopped", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - WardError, BrokerError, OSError: all end the same way
        if ward is not None:
            ward.stop()
        print("ward: error: %s" % e, file=sys.stderr)
        return 1

    def on_term(*_):
        raise KeyboardInterrupt  # SIGTERM stops the ward as Ctrl-C does

    signal.signal(signal.SIGTERM, on_term)
    next_purge = time.monotonic()
    try:
        ward.changed()  # the registry as the ward started with it (inside: Ctrl-C may come now)
        ward._next_full = time.monotonic() + 30
        while True:
            if a.retention_days and time.monotonic() >= next_purge:
                try:
                    n = ward.gw.store.purge(a.retention_days, "ward-retention")
                    print("ward: retention %g days: purged %s" % (a.retention_days, n), flush=True)
                except Exception as e:  # noqa: BLE001 - a failed purge is retried in an hour
                    print("ward: retention purge failed: %s" % e, file=sys.stderr, flush=True)
                next_purge = time.monotonic() + 3600
            time.sleep(a.poll)
            ward.follow()  # a revocation ends the device's session here
    except KeyboardInterrupt:
        pass
    finally:
        ward.stop()
    print("ward: stopped; %s; export with: make export DB=%s OUT=bundle.json"
          % (ward.gw.counts, ward.db))
    return 0


def _interrupted(*_):
    """Ctrl-C stops the ward; the clean-up after it is not interrupted again."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
