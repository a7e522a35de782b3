"""A real mosquitto broker on loopback with TLS, per-device passwords and
an ACL, for tests, `make sim` and `make campaign`.

    b = Broker(workdir, site_dir)       # site_dir: ca.pem + ca.key (dev_site)
    b.add_user("240ac4000001", password)    # a node: its derived password
    b.start()                           # b.port; b.ca_pem
    b.kill(); b.start()                 # an outage: SIGKILL, then back on the same port
    b.stop()

The server certificate is made at start for "localhost" / 127.0.0.1 and
signed by the site CA, so nodes verify it with the ca_cert they were
provisioned with. Users: each node (user = device id, 12 lower-case hex
digits, nothing else) and the service logins "gateway" and "operator"
(SERVICES): a name is one or the other, so no device login can ever take a
service's place, and set_devices() replaces device logins only.
ACL (README "Telemetry"), written per login by name: a node may publish only
vn/<its id>/tm and vn/<its id>/state and read only vn/<its id>/cmd and
vn/<its id>/ack; the gateway may only read vn/+/tm and vn/+/state and
write vn/+/ack; the operator may only write vn/+/cmd. Anonymous clients
are refused; a packet over MAX_PACKET bytes (the largest frame's PUBLISH)
disconnects its client. Persistence is on and saved after
every change, so the gateway's queued messages survive a kill; what the
broker acknowledged in the instant before a SIGKILL can still be lost
(measured by `make campaign`).
"""
import datetime
import getpass
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.provision.site import rsa_cert_file

def _frame_max():
    from tools import devicecode
    devicecode.install()
    from firmware import frames
    return frames.HEAD_LEN + frames.MAX_PAYLOAD + frames.TAG_LEN


FRAME_MAX = _frame_max()  # the largest telemetry frame a node sends (551 bytes)
# the largest MQTT packet a client may send: a PUBLISH of the largest frame
# (fixed header <= 5, topic vn/<id>/state 2 + 21, packet id 2) with room to
# spare; CONNECT (with the node's will), SUBSCRIBE and acks are smaller.
# Anything larger disconnects its client before the gateway sees a byte.
MAX_PACKET = FRAME_MAX + 64
SERVICES = ("gateway", "operator")  # service logins: names no device id can take
SERVICE_ACL = """# services (tools/broker.py SERVICES)
user gateway
topic read vn/+/tm
topic read vn/+/state
topic write vn/+/ack

user operator
topic write vn/+/cmd
"""


def acl_text(devices):
    """The ACL: the services' lines, then each device's own four topics by
    name (no pattern: a login gets exactly what is written for it)."""
    out = [SERVICE_ACL]
    for d in sorted(devices):
        out.append("user %s\ntopic write vn/%s/tm\ntopic write vn/%s/state\n"
                   "topic read vn/%s/cmd\ntopic read vn/%s/ack\n" % (d, d, d, d, d))
    return "\n".join(out)


class BrokerError(Exception):
    pass


def mosquitto_bin():
    for p in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if p and os.path.exists(p):
            return p
    raise BrokerError("mosquitto is not installed (make deps installs the Debian package)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cert(site_dir, out_dir, host="localhost"):
    """A server key and certificate for `host` and 127.0.0.1, signed by the
    site CA. An IP address `host` is named both as an IP and as a DNS name
    (mbedTLS on the node compares the name it was given as a string)."""
    site_dir, out_dir = Path(site_dir), Path(out_dir)
    names = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        pass
    ca_key = serialization.load_pem_private_key((site_dir / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((site_dir / "ca.pem").read_bytes())
    # RSA-2048: nodes offer RSA key transport only (firmware/netguard.py)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, host)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(days=1))
            .not_valid_after(t + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (out_dir / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(out_dir / "server.key", 0o600)
    (out_dir / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Broker:
    def __init__(self, workdir, site_dir, port=None, listen="127.0.0.1", host="localhost"):
        """listen: the address mosquitto binds; host: the name nodes use
        (in the server certificate)."""
        self.listen, self.host = listen, host
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)  # passwd, acl, the server key
        self.site = Path(site_dir)
        self.port = port or free_port()
        self.ca_pem = (self.site / "ca.pem").read_text()
        self.users = {}
        self.proc = None
        self.starts = 0

    def add_user(self, name, password):
        self.set_users(dict(self.users, **{name: password}))

    @property
    def local_address(self):
        """Where a client on this machine reaches the listener."""
        return "127.0.0.1" if self.listen in ("0.0.0.0", "::") else self.listen

    @staticmethod
    def _check_names(users):
        from tools.provision.keys import is_device_id
        for name in users:
            if name not in SERVICES and not is_device_id(name):
                raise BrokerError("login %r is neither a service (%s) nor a device id (12 "
                                  "lower-case hex digits)" % (name, ", ".join(SERVICES)))

    def set_users(self, users):
        """Replace the logins ({name: password}, each a service or a device
        id; BrokerError otherwise); a running broker reloads them (SIGHUP) if
        they changed. Returns True if they changed."""
        self._check_names(users)
        if users == self.users:
            return False
        self.users = dict(users)
        if self.proc is not None:
            self._write_passwords()
            self._write_acl()
            self.proc.send_signal(signal.SIGHUP)  # mosquitto reloads the password file and ACL
        return True

    def set_devices(self, devices):
        """Replace the device logins only ({device id: password}); the
        service logins stay as they are whatever `devices` holds."""
        if any(n in SERVICES for n in devices):
            raise BrokerError("a device login may not take a service's name")
        keep = {n: p for n, p in self.users.items() if n in SERVICES}
        return self.set_users(dict(devices, **keep))

    @staticmethod
    def _write_private(path, text):
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def _write_passwords(self):
        """The password file, 0600, with mosquitto's PBKDF2-SHA512 hashes
        made here: no password is ever on a command line."""
        import base64
        import hashlib
        lines = []
        for name, password in self.users.items():
            salt = os.urandom(12)
            h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
            lines.append("%s:$7$101$%s$%s\n" % (name, base64.b64encode(salt).decode(),
                                                base64.b64encode(h).decode()))
        self._write_private(self.dir / "passwd", "".join(lines))

    def _write_acl(self):
        self._write_private(self.dir / "acl", acl_text([n for n in self.users
                                                        if n not in SERVICES]))

    def _config(self):
        if not rsa_cert_file(self.dir / "server.pem"):  # missing, or an EC one from before
            server_cert(self.site, self.dir, self.host)
        self._write_passwords()
        self._write_acl()
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join([
            "user %s" % getpass.getuser(),  # root would drop to "mosquitto", who cannot read our files
            "listener %d %s" % (self.port, self.listen),
            "cafile %s" % (self.site / "ca.pem"),
            "certfile %s" % (self.dir / "server.pem"),
            "keyfile %s" % (self.dir / "server.key"),
            "tls_version tlsv1.2",
            "allow_anonymous false",
            "password_file %s" % (self.dir / "passwd"),
            "acl_file %s" % (self.dir / "acl"),
            # the gateway's session and its queued messages survive a broker
            # crash: saved after every change (a test broker: load is small)
            "persistence true",
            "persistence_location %s/" % self.dir,
            "autosave_interval 1",
            "autosave_on_changes true",
            # a ward's fleet: the gateway receives every node's frames on one
            # connection; mosquitto's defaults (20 QoS 1 messages in flight, 1,000
            # queued, then dropped) cap it near 20 / round trip and drop frames
            # after a 2.5 s hiccup at 400 frames/s (docs/patient-data.md)
            "max_inflight_messages 100",
            "max_packet_size %d" % MAX_PACKET,
            "max_queued_messages 100000",
            "log_dest file %s" % (self.dir / "mosquitto.log"),
            "log_type error", "log_type warning", "log_type notice", "log_type subscribe",
            "connection_messages true", ""]))
        return conf

    def start(self, timeout=10):
        conf = self._config()
        self.proc = subprocess.Popen([mosquitto_bin(), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError("mosquitto exited: %s" % self.proc.stderr.read().decode()[-500:])
            try:
                socket.create_connection((self.local_address, self.port), timeout=0.2).close()
                self.starts += 1
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError("mosquitto did not listen on port %d" % self.port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """An outage: the broker dies at once, connections drop."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def log(self):
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""
