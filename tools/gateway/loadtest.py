"""`make loadtest NODES=2000`: simulated nodes publish vitals over real TLS
MQTT to mosquitto, gateway workers store them; three configurations:
SQLite with 1 worker, PostgreSQL with 1 and with 2 workers (a shared
subscription). Writes build/loadtest/summary.json (one entry per
configuration: store, workers, nodes, frames_sent, frames_stored,
duplicates, frames_per_s, p50_ms, p99_ms) and build/loadtest/details.json
(CPU per process, setup, the conventions below).

    python -m tools.gateway.loadtest [--nodes 2000] [--seconds 60] [--period 5]
                                     [--configs sqlite:1,postgresql:1,postgresql:2]

Real parts: mosquitto with TLS, per-device logins and the ACL (tools/broker.py);
a PostgreSQL server of its own with durable settings (fsync and
synchronous commit on); the gateway workers as separate processes
(`python -m tools.gateway run --quiet`), each verifying the HMAC of every
frame against the registry, sealing it, storing it and acknowledging it.

The nodes are lightweight: one asyncio process, one TLS connection and
MQTT login per node, a minimal MQTT 3.1.1 client (CONNECT, SUBSCRIBE to its
vn/<id>/ack, PUBLISH QoS 1). Each node sends one vitals frame every
--period seconds at the real rate (not time-compressed), phases spread
over the period, so 2,000 nodes offer 400 frames/s. One frame in 20 is
published a second time 1 s later, as a node resends a frame whose ack it
missed: those copies must be refused by the store's unique key, whichever
worker receives them.

Figures:
  frames_sent    distinct frames published (resends not counted)
  frames_stored  rows in the store afterwards (must equal frames_sent)
  duplicates     copies the store refused as already stored (the resends,
                 plus any MQTT redelivery)
  frames_per_s   frames_stored / (last acknowledgement - first publish)
  p50_ms/p99_ms  store latency: from a frame's first PUBLISH to the
                 gateway's authenticated acknowledgement, which it sends
                 after the transaction holding the frame committed
CPU (details.json): process CPU seconds / wall seconds x 100 for the
workers, mosquitto, PostgreSQL and the publishers (100 = one core).
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import resource
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import hostshims
from tools.paths import BUILD, ROOT

hostshims.install()  # firmware/frames.py (the node's own encoder) runs on CPython

KEYS = ("store", "workers", "nodes", "frames_sent", "frames_stored", "duplicates",
        "frames_per_s", "p50_ms", "p99_ms")


def _pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100.0 * len(v) + 0.5)) - 1))]


# -- a minimal MQTT 3.1.1 publisher -------------------------------------------

def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def _packet(first, body):
    n, rl = len(body), bytearray()
    while True:
        d, n = n % 128, n // 128
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body


async def _read_packet(r):
    first = (await r.readexactly(1))[0]
    mult, n = 1, 0
    while True:
        d = (await r.readexactly(1))[0]
        n += (d & 0x7F) * mult
        mult *= 128
        if not d & 0x80:
            break
    return first, await r.readexactly(n) if n else b""


class Node:
    def __init__(self, dev, password, telemetry_key, run, index=0):
        self.dev, self.password, self.key, self.run = dev, password, telemetry_key, run
        self.index = index
        self.devb = bytes.fromhex(dev)
        self.seq = 0
        self.pid = 0
        self.sent = {}  # seq -> first publish time
        self.acked = set()

    def tag(self, b):
        return hmac.new(self.key, b, hashlib.sha256).digest()

    async def connect(self, host, port, ctx):
        self.r, self.w = await asyncio.open_connection(host, port, ssl=ctx)
        self.w.write(_packet(0x10, _str("MQTT") + bytes([4, 0xC2]) + struct.pack(">H", 120)
                             + _str(self.dev) + _str(self.dev) + _str(self.password)))
        first, body = await _read_packet(self.r)
        if first != 0x20 or body[1] != 0:
            raise OSError("node %s: CONNACK %r" % (self.dev, body))
        self.w.write(_packet(0x82, struct.pack(">H", 1) + _str("vn/%s/ack" % self.dev) + b"\x00"))
        first, body = await _read_packet(self.r)
        if first != 0x90 or body[2] not in (0, 1):
            raise OSError("node %s: SUBACK %r" % (self.dev, body))
        self.reader = asyncio.ensure_future(self.read_loop())

    async def read_loop(self):
        from firmware import frames
        try:
            while True:
                first, body = await _read_packet(self.r)
                if first & 0xF0 == 0x30:
                    tl = struct.unpack(">H", body[:2])[0]
                    p = 2 + tl
                    if first & 0x06:
                        pid = body[p:p + 2]
                        p += 2
                        self.w.write(b"\x40\x02" + pid)
                    seq = frames.ack_seq(body[p:], self.devb, self.tag, hmac.compare_digest)
                    if seq < 0:
                        self.run.bad_acks += 1
                    elif seq in self.sent and seq not in self.acked:
                        self.acked.add(seq)
                        now = time.monotonic()
                        self.run.latencies.append(now - self.sent[seq])
                        self.run.last_ack = now
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass

    def frame(self):
        from firmware import frames
        self.seq += 1
        hdr = (self.devb, self.seq, int(time.time()), self.seq * 5000, frames.T_WALL)
        hr = 600 + random.randrange(400)
        body = frames.vitals(hdr, hr, 950 + random.randrange(40), 80 + random.randrange(20), 0,
                             [(self.seq * 5000 - 800, 800), (self.seq * 5000, 800)])
        return self.seq, frames.seal(body, self.tag)

    def publish(self, payload):
        self.pid = self.pid % 65535 + 1
        self.w.write(_packet(0x32, _str("vn/%s/tm" % self.dev) + struct.pack(">H", self.pid)
                             + payload))

    async def resend_later(self, payload, delay):
        await asyncio.sleep(delay)
        self.publish(payload)
        self.run.resent += 1

    async def publish_loop(self, t_end, period, phase):
        await asyncio.sleep(phase)
        nxt = time.monotonic()
        while nxt < t_end:
            seq, payload = self.frame()
            now = time.monotonic()
            self.sent[seq] = now
            if self.run.first_pub is None:
                self.run.first_pub = now
            self.publish(payload)
            if (seq + self.index) % 20 == 0:
                asyncio.ensure_future(self.resend_later(payload, 1.0))
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    async def close(self):
        try:
            self.w.write(b"\xe0\x00")
            self.w.close()
        except Exception:  # noqa: BLE001
            pass
        self.reader.cancel()


class _Run:
    def __init__(self):
        self.latencies = []
        self.first_pub = None
        self.last_ack = None
        self.resent = 0
        self.bad_acks = 0


async def _publish(nodes_spec, host, port, ca, seconds, period, drain_s, log):
    run = _Run()
    ctx = ssl.create_default_context(cafile=str(ca))
    nodes = [Node(d, pw, k, run, i) for i, (d, pw, k) in enumerate(nodes_spec)]
    t0 = time.monotonic()
    for i in range(0, len(nodes), 100):
        await asyncio.gather(*(n.connect(host, port, ctx) for n in nodes[i:i + 100]))
    log("loadtest: %d nodes logged in over TLS in %.1f s" % (len(nodes), time.monotonic() - t0))
    t_end = time.monotonic() + seconds
    await asyncio.gather(*(n.publish_loop(t_end, period, period * i / len(nodes))
                           for i, n in enumerate(nodes)))
    sent = sum(len(n.sent) for n in nodes)
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline and sum(len(n.acked) for n in nodes) < sent:
        await asyncio.sleep(0.1)
    acked = sum(len(n.acked) for n in nodes)
    for n in nodes:
        await n.close()
    return run, sent, acked


# -- one configuration ------------------------------------------------------------

class _Broker:
    """tools.broker.Broker whose password file is written in one go
    (mosquitto_passwd -U hashes a whole file) - 2,000 logins."""

    @staticmethod
    def make(workdir, site):
        from tools.broker import Broker, BrokerError

        class Fast(Broker):
            def _write_passwords(self):
                pw = self.dir / "passwd"
                pw.write_text("".join("%s:%s\n" % kv for kv in self.users.items()))
                os.chmod(pw, 0o600)
                r = subprocess.run(["mosquitto_passwd", "-U", str(pw)], capture_output=True,
                                   text=True)
                if r.returncode:
                    raise BrokerError("mosquitto_passwd -U: %s" % (r.stderr or r.stdout))
        return Fast(workdir, site)


def _counts(output):
    """A worker's outcome counts, from its last line ("gateway: {...}")."""
    import ast
    for line in reversed(output.strip().splitlines()):
        if line.startswith("gateway: {"):
            return ast.literal_eval(line[len("gateway: "):])
    return {"exit": output.strip()[-300:]}


def _proc_cpu(pid):
    from tools.gateway.pgserver import tree_cpu_seconds
    return tree_cpu_seconds(pid)


def run_config(store, workers, env, nodes_spec, seconds, period, log):
    w = env["dir"] / ("%s-%d" % (store, workers))
    w.mkdir(parents=True, exist_ok=True)
    broker = _Broker.make(w / "broker", env["site"])
    broker.set_users(env["users"])
    broker.start()
    procs = []
    try:
        return _measure(store, workers, env, nodes_spec, seconds, period, log, w, broker, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()


def _measure(store, workers, env, nodes_spec, seconds, period, log, w, broker, procs):
    from tools.gateway.store import Store
    if store == "sqlite":
        url = str(w / "gateway.sqlite")
    else:
        url = env["pg"].create_database("lt_%s_%d" % (store, workers))
    st = Store(url)  # migrated before the workers start
    st.close()
    wenv = dict(os.environ, VITALNODE_DATA_KEY_FILE=str(env["key"]), PYTHONPATH=str(ROOT))
    for i in range(workers):
        args = [sys.executable, "-m", "tools.gateway", "run", "--quiet", "--db", url,
                "--registry", str(env["registry"]), "--host", "127.0.0.1", "--port",
                str(broker.port), "--ca", str(env["site"] / "ca.pem"), "--password-file",
                str(env["gwpw"]), "--client-id", "lt-%s-%d-%d" % (store, workers, i)]
        if workers > 1:
            args += ["--share", "vn-gw"]
        p = subprocess.Popen(args, cwd=ROOT, env=wenv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = p.stdout.readline()
        while line.startswith("gateway-stats"):
            line = p.stdout.readline()
        if "listening" not in line:
            raise RuntimeError("gateway worker did not start: %s%s" % (line, p.stdout.read()[-500:]))
        procs.append(p)
    cpu0 = {"workers": sum(_proc_cpu(p.pid) for p in procs), "mosquitto": _proc_cpu(broker.proc.pid),
            "postgresql": env["pg"].cpu_seconds() if env.get("pg") else 0.0,
            "publishers": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    run, sent, acked = asyncio.run(_publish(nodes_spec, "127.0.0.1", broker.port,
                                            env["site"] / "ca.pem", seconds, period, 30, log))
    wall = time.monotonic() - t0
    cpu = {"workers": sum(_proc_cpu(p.pid) for p in procs), "mosquitto": _proc_cpu(broker.proc.pid),
           "postgresql": env["pg"].cpu_seconds() if env.get("pg") else 0.0,
           "publishers": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
    cpu_pct = {k: round(100.0 * (cpu[k] - cpu0[k]) / wall, 1) for k in cpu}
    if store == "sqlite":
        cpu_pct.pop("postgresql")
    outs = []
    for p in procs:
        p.terminate()
        try:
            outs.append(p.communicate(timeout=20)[0])
        except subprocess.TimeoutExpired:
            p.kill()
            outs.append(p.communicate()[0])
    broker.stop()
    for i, o in enumerate(outs):
        for line in o.splitlines():
            if line.startswith("gateway-stats"):
                log("loadtest:   worker %d %s" % (i, line))
    st = Store(url)
    stored = st.count_frames()
    dups = st.db.one("SELECT COUNT(*) FROM refused WHERE outcome = 'duplicate'")[0]
    other = st.db.query("SELECT outcome, COUNT(*) FROM refused WHERE outcome <> 'duplicate' "
                        "GROUP BY outcome")
    st.close()
    span = (run.last_ack - run.first_pub) if run.last_ack and run.first_pub else None
    entry = {"store": store, "workers": workers, "nodes": len(nodes_spec), "frames_sent": sent,
             "frames_stored": stored, "duplicates": dups,
             "frames_per_s": round(stored / span, 1) if span else 0.0,
             "p50_ms": round(1000 * _pct(run.latencies, 50), 1) if run.latencies else None,
             "p99_ms": round(1000 * _pct(run.latencies, 99), 1) if run.latencies else None}
    detail = {"cpu_pct": cpu_pct,
              "loadavg_1min_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
              "seconds": seconds, "period_s": period, "resent": run.resent,
              "acked": acked, "bad_acks": run.bad_acks, "refused_other": dict(other),
              "max_ms": round(1000 * max(run.latencies), 1) if run.latencies else None,
              "offered_frames_per_s": round(len(nodes_spec) / period, 1),
              "worker_counts": [_counts(o) for o in outs]}
    return entry, detail


def setup(workdir, nodes, log):
    """Site, registry with `nodes` devices, key file: shared by every configuration."""
    from tools.gateway.crypto import KeyRing
    from tools.provision import keys as pkeys
    from tools.provision.registry import Registry
    from tools.provision.site import dev_site
    t0 = time.monotonic()
    site = dev_site(workdir / "site").parent
    key = workdir / "data.key"
    ring = KeyRing.load(key, create=True)
    reg = Registry(workdir / "registry.sqlite", ring=ring)
    spec, users = [], {}
    for i in range(nodes):
        dev = "24%010x" % (0xa0000000 + i)
        sub = pkeys.subkeys(pkeys.new_root(), dev)
        reg.begin(dev, 1, sub, "esp32", False)
        reg.activate(dev)
        pw = pkeys.broker_password(sub["broker"])
        users[dev] = pw
        spec.append((dev, pw, sub["telemetry"]))
    reg.close()
    gwpw = workdir / "gateway.pw"
    users["gateway"] = "gw-" + os.urandom(8).hex()
    gwpw.write_text(users["gateway"])
    os.chmod(gwpw, 0o600)
    log("loadtest: %d nodes provisioned in %.1f s" % (nodes, time.monotonic() - t0))
    return {"dir": workdir, "site": site, "key": key, "registry": workdir / "registry.sqlite",
            "users": users, "gwpw": gwpw}, spec


def run(nodes=2000, seconds=60, period=5.0, configs=(("sqlite", 1), ("postgresql", 1),
                                                      ("postgresql", 2)),
        out_dir=BUILD / "loadtest", workdir=None, log=print):
    """Run the configurations; write summary.json and details.json; return the entries."""
    from tools.gateway.pgserver import PgServer
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * nodes + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    saved = {k: os.environ.pop(k, None) for k in ("VITALNODE_DATA_KEY", "VITALNODE_DATA_KEY_FILE")}
    tmp = Path(workdir or tempfile.mkdtemp(prefix="vn-loadtest-"))
    env, spec = setup(tmp, nodes, log)
    os.environ["VITALNODE_DATA_KEY_FILE"] = str(env["key"])  # this run's key, for every process
    pg = None
    entries, details = [], []
    try:
        if any(s == "postgresql" for s, _ in configs):
            pg = PgServer(fast=False).start()  # durable: fsync and synchronous commit on
            env["pg"] = pg
        for store, workers in configs:
            log("loadtest: %s, %d worker(s), %d nodes, %g s at one frame per %g s each"
                % (store, workers, nodes, seconds, period))
            e, d = run_config(store, workers, env, spec, seconds, period, log)
            entries.append(e)
            details.append(dict(e, **d))
            log("loadtest:   sent %d, stored %d, duplicates refused %d, %.1f frames/s, p50 %s ms, "
                "p99 %s ms, CPU %% %s" % (e["frames_sent"], e["frames_stored"], e["duplicates"],
                                         e["frames_per_s"], e["p50_ms"], e["p99_ms"], d["cpu_pct"]))
    finally:
        if pg is not None:
            pg.stop()
        del os.environ["VITALNODE_DATA_KEY_FILE"]
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(entries, indent=1) + "\n")
    (out_dir / "details.json").write_text(json.dumps({
        "about": __doc__.split("Figures:")[1].strip(), "machine_cores": os.cpu_count(),
        "configurations": details}, indent=1) + "\n")
    if workdir is None:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return entries


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.gateway.loadtest",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--period", type=float, default=5.0, help="seconds between a node's frames")
    ap.add_argument("--configs", default="sqlite:1,postgresql:1,postgresql:2")
    ap.add_argument("--out", default=str(BUILD / "loadtest"))
    a = ap.parse_args(argv)
    try:
        configs = [(c.split(":")[0], int(c.split(":")[1])) for c in a.configs.split(",")]
        assert all(s in ("sqlite", "postgresql") and w >= 1 for s, w in configs)
        assert a.nodes >= 1 and a.seconds > 0 and a.period > 0
    except (ValueError, IndexError, AssertionError):
        print("loadtest: --configs is store:workers[,...] with store sqlite or postgresql; "
              "--nodes, --seconds, --period positive", file=sys.stderr)
        return 2
    entries = run(a.nodes, a.seconds, a.period, configs, a.out)
    ok = all(e["frames_stored"] == e["frames_sent"] for e in entries)
    print("loadtest: wrote %s/summary.json%s" % (a.out, "" if ok else
                                                  " - FRAMES LOST: stored != sent"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
