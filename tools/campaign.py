"""`make campaign`: the telemetry outage campaign against a real mosquitto.

    python -m tools.campaign [--outages 60] [--seed 1] [--out build/campaign/telemetry.json]

One simulated node runs the real firmware pieces - sensor, sampler, the
timer pump, detection, telemetry, flash outbox, uplink over umqtt.simple
with TLS - on CPython with the shims and the virtual clock, against a real
mosquitto (TLS, passwords, ACL) and the real gateway. Vitals every 5 s as
the app sends them, alerts at random (3 % a second). At random points it
suffers outages, each lasting 2-40 virtual seconds: the broker is
SIGKILLed and restarted, WiFi drops, or the broker becomes a black hole
(connects and reads hang for the whole timeout). The network costs what
it costs the chip (tools/shims/simnet.py: round trips in 100 ms polled
slices, the handshake's public-key work with no callbacks), and so do
flash, NVS and I2C (tools/shims/timing.py, --timing typical|worst).
Between outages it is
sometimes rebooted with frames still queued. At the end the network heals,
the queue drains, and the gateway's store is compared with what the node
produced. Then an attacker with the node's broker login replays delivered
frames and sends forged ones.

Then the security attack classes (tools/seccampaign.py) ->
security.json beside the --out file.

Figures (printed and written as JSON): outages, reboots, frames_produced,
frames_delivered, duplicates_removed, frames_dropped (queue full, counted
by the node), frames_lost (produced, not dropped, not delivered),
alerts_produced, alerts_lost, max_queue_depth, samples_lost_during_stalls,
stall_seconds, forged_accepted, replayed_accepted; timing, samples_lost
(the sensor's FIFO overflows: the chip's ground truth), fifo_fill_max (the
most samples its 32-deep FIFO held), pump_latency_ms_max (the sampler
timer's longest wait from tick to callback).
"""
import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from tools import hostshims
from tools.paths import BUILD

hostshims.install()


class Node:
    """The firmware's data path on one simulated board (rebuilt on reboot)."""

    def __init__(self, board, dev, port, ca_pem, net):
        import esp32
        import machine
        import simmax

        from firmware import keystore, outbox, sensor
        from firmware.detect import Detect
        from firmware.pump import Pump
        from firmware.seqno import SeqNo
        from firmware.telemetry import Telemetry
        from firmware.uplink import Uplink
        import network
        if not board.i2c_buses[0].devices:
            simmax.attach_spec({"chip": "max86150"})
        self.ks = keystore.load()
        self.smp, _ = sensor.start()
        self.det = Detect(self.smp)
        self.wdt = machine.WDT(timeout=10000)
        self.pump = Pump(self.smp, self.det, self.wdt)
        self.box = outbox.Outbox()
        self.tm = Telemetry(self.ks, self.box, SeqNo(esp32.NVS("vn_tel")), 6000)
        self.wlan = network.WLAN(network.STA_IF)
        # the broker's address as well as its name: the node never resolves
        self.up = Uplink(dev, {"host": "localhost", "addr": "127.0.0.1", "port": port}, ca_pem,
                         self.ks.broker_password(), wlan=self.wlan,
                         wifi={"ssid": "ward", "password": "ward-password"},
                         net_socket=net, net_ssl=net.ssl, ack_check=self.tm.ack_seq,
                         on_time=self.tm.sync_clock)  # the RTC from the gateway's acks

    def lost_samples(self):
        return self.smp.lost + self.smp.lost_estimated


def run(outages=60, seed=1, log=print, workdir=None, timing_profile="typical"):
    import simboard
    import timing
    import vclock

    from firmware import frames, keystore, storage
    from firmware.telemetry import VITALS_S
    from tools.broker import Broker
    from tools.gateway.core import Gateway
    from tools.gateway.mqtt import Subscriber
    from tools.provision import keys as pkeys
    from tools.provision.registry import Registry
    from tools.provision.site import dev_site
    from simnet import SimNet

    rnd = random.Random(seed)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="vn-campaign-"))
    site = dev_site(tmp / "site").parent
    dev = "240ac4c0ffee"
    root = pkeys.new_root()
    sub = pkeys.subkeys(root, dev)
    reg = Registry(tmp / "reg.sqlite")
    reg.begin(dev, 1, sub, "esp32", False)
    reg.activate(dev)
    broker = Broker(tmp / "broker", site)
    broker.add_user(dev, pkeys.broker_password(sub["broker"]))
    broker.add_user("gateway", "gw-campaign")
    broker.start()
    from tools.gateway.limits import RateLimiter
    # the rate limit counts the node's time: the campaign runs faster than real time
    gw = Gateway(tmp / "reg.sqlite", tmp / "gw.sqlite",
                 limiter=RateLimiter(clock=lambda: vclock.clock.now_us / 1e6),
                 clock=lambda: 1800000000 + vclock.clock.now_us / 1e6)  # the node's world: its acks set the node's RTC
    gsub = Subscriber(gw, "localhost", broker.port, site / "ca.pem", "gw-campaign").start()

    board = simboard.new_board(uid=bytes.fromhex(dev))
    board.wifi.add_ap("ward", "ward-password")
    board.wifi.connect_ms = 800
    storage.use(board.fs)
    keystore.install(root.hex(), 1)
    from tools.sim.world import key_kind
    timing.use(timing_profile)
    net = SimNet({"ca": key_kind(site / "ca.pem"), "server": key_kind(broker.dir / "server.pem")})
    node = Node(board, dev, broker.port, broker.ca_pem, net)
    produced, alerts = set(), set()
    dropped = lost_samples = max_depth = reboots = 0
    t_wall = time.monotonic()

    def step(ms=50):
        node.pump.alive()
        node.up.service(node.box)
        vclock.clock.sleep_us(ms * 1000)

    def produce(kind):
        if kind == frames.ALERT:
            name = node.tm.alert(rnd.randrange(7), rnd.random() < 0.5, vclock.clock.now_us // 1000,
                                 node.det)
        else:
            name = node.tm.vitals(node.det)
        if name:
            (alerts if kind == frames.ALERT else produced).add(int(name[:8], 16))

    def live(seconds):
        nonlocal max_depth
        end = vclock.clock.now_us + seconds * 1000000
        next_s = vclock.clock.now_us
        while vclock.clock.now_us < end:
            if vclock.clock.now_us >= next_s:  # each second: vitals every VITALS_S, alerts at random
                next_s += 1000000
                if (next_s // 1000000) % VITALS_S == 0:
                    produce(frames.VITALS)
                if rnd.random() < 0.03:
                    produce(frames.ALERT)
            step()
            max_depth = max(max_depth, node.box.depth)

    def reboot():
        nonlocal node, dropped, lost_samples, reboots
        dropped += node.box.dropped_total()
        lost_samples += node.lost_samples()
        node.pump.stop()
        node.up.close()
        board.reset(simboard.SOFT_RESET)
        node = Node(board, dev, broker.port, broker.ca_pem, net)
        reboots += 1
        log("campaign: reboot %d; samples lost so far %d" % (reboots, lost_samples))

    kinds = {"broker-kill": 0, "wifi-drop": 0, "blackhole": 0}
    live(10)
    for i in range(outages):
        kind = rnd.choice(sorted(kinds))
        kinds[kind] += 1
        dur = rnd.randint(2, 40)
        if kind == "broker-kill":
            broker.kill()
            live(dur)
            broker.start()
        elif kind == "wifi-drop":
            board.wifi.down = True
            board.wifi.drop()
            live(dur)
            board.wifi.down = False
        else:
            net.blackhole = True
            live(dur)
            net.blackhole = False
        if rnd.random() < 0.2:
            reboot()  # with whatever is still queued
        live(rnd.randint(1, 20))
        log("campaign: outage %d/%d %-11s %2d s; queued %3d, delivered %d"
            % (i + 1, outages, kind, dur, node.box.depth, len(gw.rows(device=dev))))
    # heal and drain: every queued frame must reach the store
    deadline = vclock.clock.now_us + 600 * 1000000
    while (node.box.depth or not node.up.up) and vclock.clock.now_us < deadline:
        step(200)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        got = {r["seq"] for r in gw.rows(device=dev)}
        if produced | alerts <= got:
            break
        time.sleep(0.1)
    dropped += node.box.dropped_total()
    lost_samples += node.lost_samples()
    rows = gw.rows(device=dev)
    got = {r["seq"] for r in rows}
    frames_lost = len((produced | alerts) - got) - dropped
    alerts_lost = len(alerts - got) + node.tm.alerts_lost

    node.pump.stop()
    node.up.close()  # the node is done; a resend still in the broker may arrive late
    dups = gw.counts["duplicate"]  # resends after outages and reboots, removed
    forged0 = gw.counts["forged"]
    stored0 = gw.counts["stored"]
    # attacks: a replay of delivered frames and forged frames, with the node's login
    replayed, forged = _attack(broker, site, dev, pkeys.broker_password(sub["broker"]), gw)
    t0 = time.monotonic()
    stale0 = gw.counts["stale"]
    while time.monotonic() - t0 < 10 and (gw.counts["duplicate"] - dups + gw.counts["stale"]
                                          - stale0 < replayed
                                          or gw.counts["forged"] - forged0 < forged):
        time.sleep(0.05)
    forged_in = [r for r in gw.rows(device=dev) if r["seq"] >= _FORGED_SEQ]
    res = {
        "outages": outages, "outage_kinds": kinds, "reboots": reboots,
        "sim_seconds": vclock.clock.now_us // 1000000,
        "wall_seconds": round(time.monotonic() - t_wall, 1),
        "frames_produced": len(produced) + len(alerts),
        "frames_delivered": len(got),
        "duplicates_removed": dups,
        # measurement times from the node's RTC, which only the gateway's acks set
        "frames_with_node_time": sum(1 for r in rows if r["wall"]),
        "node_time_skewed": gw.skewed,
        "frames_dropped": dropped, "frames_lost": frames_lost,
        "alerts_produced": len(alerts), "alerts_lost": alerts_lost,
        "max_queue_depth": max_depth,
        "samples_lost_during_stalls": lost_samples,
        "stall_seconds": net.stalls_ms // 1000,
        "timing": timing.P.name,
        "samples_lost": sum(c.dropped for c in board.i2c_buses[0].devices.values()),
        "fifo_fill_max": max((c.fill_max for c in board.i2c_buses[0].devices.values()), default=0),
        "pump_latency_ms_max": board.timer_latency_max_us.get(0, 0) / 1000,
        "handshakes": net.handshakes, "handshake_crypto_ms_max": net.crypto_us_max // 1000,
        "replays_sent": replayed,
        # a replay is of a stored frame: accepting one would store it again
        "replayed_accepted": gw.counts["stored"] - stored0 - len(forged_in),
        "forged_sent": forged, "forged_accepted": len(forged_in),
        "gateway_counts": dict(gw.counts),
    }
    gsub.stop()
    broker.stop()
    return res


_FORGED_SEQ = 900000000


def _attack(broker, site, dev, password, gw):
    """Replay stored frames and send forged ones, as someone who stole the
    node's broker login would; returns (replays sent, forgeries sent)."""
    import hashlib
    import hmac

    import paho.mqtt.client as mqtt

    from firmware import frames
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    c.username_pw_set(dev, password)
    c.tls_set(ca_certs=str(site / "ca.pem"))
    c.connect("localhost", broker.port)
    c.loop_start()
    raw = gw.raw(dev, 20)
    topic = "vn/%s/tm" % dev
    for f in raw:
        c.publish(topic, f, qos=1).wait_for_publish(5)
    wrong_key = hashlib.sha256(b"not the node's key").digest()
    n = 0
    for i in range(20):
        hdr = (bytes.fromhex(dev), _FORGED_SEQ + i, 1, 1, 0)
        body = frames.vitals(hdr, 1200, 500, 100, 0, [])
        c.publish(topic, body + hmac.new(wrong_key, body, hashlib.sha256).digest()[:16],
                  qos=1).wait_for_publish(5)
        n += 1
    c.loop_stop()
    c.disconnect()
    return len(raw), n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outages", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timing", choices=["typical", "worst"], default="typical",
                    help="how long the chip's blocking calls take (docs/timing.md)")
    ap.add_argument("--out", default=str(BUILD / "campaign" / "telemetry.json"))
    a = ap.parse_args(argv)
    res = run(a.outages, a.seed, timing_profile=a.timing)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    for k, v in res.items():
        print("campaign: %-28s %s" % (k, v))
    print("campaign: written %s" % out)
    bad = res["frames_lost"] or res["alerts_lost"] or res["forged_accepted"] or \
        res["replayed_accepted"] or res["samples_lost_during_stalls"] or res["samples_lost"]
    # the attack classes of issue 19, beside it (tools/seccampaign.py)
    from tools import seccampaign
    bad = seccampaign.main(["--out", str(out.with_name("security.json"))]) or bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
