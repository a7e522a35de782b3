"""What surrounds the simulated nodes in `make sim`: a development site
(CA, OTA key), a device registry, N provisioned nodes, a real mosquitto on
loopback with TLS, passwords and the per-device ACL, and the gateway
subscribed to it (verifying, de-duplicating and storing every frame).

    w = World(workdir, nodes=2).start()    # site: build/dev-site unless site_dir=
    World(workdir, power_save=False)       # config.json: "power": {"save": false}
    spec = w.node_spec(0)        # the node's key, config and WiFi for tools/vm/node.py
    ...
    w.wait_delivered({dev: n}, timeout_s=10)
    w.stop()
"""
import json
import secrets
import threading
import time
from collections import Counter
from pathlib import Path

from tools.paths import BUILD

PATIENTS = ("Garcia", "Okafor", "Lindqvist", "Tanaka", "Moreau", "Novak", "Haddad", "Walsh")
CLOCK_S = 1  # how often a node reports its virtual time (SIM-CLOCK)
FIRST_UID = 0x240AC4000001  # simboard.Board's default unique_id, then +1 per node
WIFI = ("vitalnode-sim", "sim-ward-password")
SPEED_MAX = 200  # the fastest a simulated node runs, in simulated s per wall s


def key_kind(pem):
    """"rsa2048", "ec256", ... for a certificate file: what the node's
    handshake computes with (tools/shims/simnet.handshake_us)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = x509.load_pem_x509_certificate(pem.read_bytes()).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa%d" % key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec%d" % key.curve.key_size
    raise ValueError("%s: neither an RSA nor an EC key" % pem)


def sim_config(cfg, power_save):
    """A provisioned node's config for the simulated world: power.save set
    as asked (the site's other power fields kept), checked by the
    firmware's own validator, as provisioning checks every config."""
    from tools.provision.site import _firmware_config
    out = dict(cfg, power=dict(cfg.get("power") or {}, save=bool(power_save)))
    _firmware_config().validate(out, out["device_id"])
    return out


def device_ids(n):
    return ["%012x" % (FIRST_UID + i) for i in range(n)]


class _CountingGateway:
    """tools.gateway.core.Gateway, counting each outcome per device."""

    def __init__(self, gw):
        self.gw = gw
        self.by_device = {}
        self.lock = threading.Lock()

    def handle(self, topic, payload):
        out = self.gw.handle(topic, payload)
        dev = topic.split("/")[1] if topic.count("/") == 2 else "?"
        with self.lock:
            self.by_device.setdefault(dev, Counter())[out] += 1
        return out

    def ack(self, payload):
        return self.gw.ack(payload)

    def latest(self, dev):
        return self.gw.latest(dev)

    def counts(self, dev):
        with self.lock:
            return dict(self.by_device.get(dev, {}))


class World:
    def __init__(self, workdir, nodes=1, log=print, site_dir=None, power_save=True,
                 battery=None):
        """workdir: the broker, registry and store (made anew each start);
        site_dir: the development site (made there once; default
        build/dev-site); power_save: every node's config power.save;
        battery: the nodes' config.json battery block (firmware/config.py),
        None for none."""
        self.power_save = power_save
        self.dir = Path(workdir)
        self.dev_site_dir = Path(site_dir) if site_dir else BUILD / "dev-site"
        self.battery = battery  # the nodes' config battery block, or None: no monitor
        self.devices = device_ids(nodes)
        self.log = log
        self.images = {}
        self.broker = None
        self.sub = None
        self.outage = 0  # nodes inside a broker outage (the broker is shared)
        self.lock = threading.Lock()
        # the gateway's clock follows the nodes' virtual time (they run up to
        # ~100x real time): its acknowledgements set the nodes' RTCs, and it
        # checks their frame times against arrival (tools/gateway/core.py)
        self.epoch = int(time.time())
        self.node_ms = 0  # the furthest virtual time a node reported (SIM-CLOCK)

    def start(self):
        from tools.broker import Broker
        from tools.gateway.core import Gateway
        from tools.gateway.mqtt import Subscriber
        from tools.provision import keys
        from tools.provision.image import simulated_node
        from tools.provision.site import dev_site
        self.dir.mkdir(parents=True, exist_ok=True)
        site = dev_site(self.dev_site_dir)
        self.site_dir = site.parent
        reg = self.dir / "registry.sqlite"
        reg.unlink(missing_ok=True)
        import shutil
        shutil.rmtree(self.dir / "broker", ignore_errors=True)  # no sessions from a past run
        self.broker = Broker(self.dir / "broker", self.site_dir)
        for dev in self.devices:
            image, cfg, root = simulated_node(dev, reg, site)
            # an address as well as the name: the node never resolves (docs/timing.md)
            cfg["broker"] = {"host": "localhost", "addr": "127.0.0.1", "port": self.broker.port}
            cfg["wifi"] = {"ssid": WIFI[0], "password": WIFI[1]}
            if self.battery:
                cfg["battery"] = dict(self.battery)
            image["files"]["config.json"] = json.dumps(sim_config(cfg, self.power_save))
            self.images[dev] = image
            self.broker.add_user(dev, keys.broker_password(keys.subkeys(root, dev)["broker"]))
        gw_password = secrets.token_hex(16)
        self.broker.add_user("gateway", gw_password)
        self.broker.start()
        self.tls_keys = {"ca": key_kind(self.site_dir / "ca.pem"),
                         "server": key_kind(self.broker.dir / "server.pem")}
        db = self.dir / "gateway.sqlite"
        db.unlink(missing_ok=True)
        from tools.gateway.limits import RATE, RateLimiter
        # the per-login rate limit counts wall time, and the simulated nodes run
        # up to ~100x real time: scaled so that it passes a node's own pace (the
        # limit itself: test_gateway_limits and make campaign's security part)
        self.gw = _CountingGateway(Gateway(reg, db, log=self.log,
                                           limiter=RateLimiter(rate=RATE * SPEED_MAX),
                                           clock=self.wall))
        # each node on a simulated patient from the start, as on a ward: the store
        # attributes its frames by measurement time and the FHIR export names them
        st = self.gw.gw.store
        for i, dev in enumerate(self.devices):
            p = st.admit("SIM-%d" % (i + 1), PATIENTS[i % len(PATIENTS)], ["Sim"], "1960-01-01",
                         "SIM", str(i + 1), actor="sim")
            st.assign(p["id"], dev, "sim", start=self.epoch - 60)
        self.sub = Subscriber(self.gw, "localhost", self.broker.port, self.site_dir / "ca.pem",
                              gw_password).start()
        self.log("sim: mosquitto on localhost:%d (TLS, passwords, per-device ACL), gateway "
                 "subscribed; %d node(s) provisioned: %s"
                 % (self.broker.port, len(self.devices), " ".join(self.devices)))
        return self

    def node_spec(self, i):
        dev = self.devices[i]
        return {"uid": dev, "image": self.images[dev], "wifi": [[WIFI[0], WIFI[1], -58]],
                "tls_keys": self.tls_keys, "clock_s": CLOCK_S}

    def node_line(self, text):
        """Take a node's SIM-CLOCK <virtual ms> line (True), else False."""
        if not text.startswith("SIM-CLOCK "):
            return False
        ms = int(text[10:])
        with self.lock:
            if ms > self.node_ms:
                self.node_ms = ms
        return True

    def wall(self):
        """The simulated world's Unix time: when the run started, plus the
        nodes' virtual time (behind a node by at most CLOCK_S)."""
        return self.epoch + self.node_ms / 1000

    def broker_fault(self, what):
        """A node reached a broker outage ("broker down" / "broker up"):
        the broker is one process, so it stays down while any node is in
        its outage."""
        with self.lock:
            if what.endswith("down"):
                self.outage += 1
                if self.outage == 1:
                    self.broker.kill()
            else:
                self.outage = max(0, self.outage - 1)
                if self.outage == 0 and not self.broker.running:
                    self.broker.start()

    def wait_delivered(self, sent, timeout_s=15):
        """Wait until the gateway has seen every frame the nodes say the
        broker accepted ({device: count})."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self._seen(d) >= n for d, n in sent.items()):
                return True
            time.sleep(0.05)
        return False

    def _seen(self, dev):
        return sum(self.gw.counts(dev).values())

    def stop(self):
        if self.sub is not None:
            self.sub.stop()
        if self.broker is not None:
            self.broker.stop()
