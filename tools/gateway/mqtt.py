"""The gateway on the broker: subscribes to every node's telemetry and state
with its read-only login, hands the messages to the gateway, acknowledges
what it stored, prints live vitals.

    sub = Subscriber(gw, "localhost", port, ca_pem_path, password).start()
    sub = Subscriber(gw, ..., share="vn-gw", client_id="gw-2").start()   # one of several workers
    ...
    sub.stop()

QoS 1 subscription with a persistent session (clean_session False), so a
message the broker accepted while the gateway was away is delivered on
reconnect; paho reconnects by itself after a broker restart. Every frame
the gateway settled (stored, already stored, erased) is acknowledged on
vn/<id>/ack: the node keeps a frame on its flash until then, so what a
broker accepted and lost in a crash is published again.

Several workers: with share="group" each worker subscribes to
$share/group/vn/+/tm, and the broker hands each message to one worker of
the group. The workers share the store (PostgreSQL); a frame that reaches
two workers (a redelivery, a node's resend) is stored once: the store's
unique key decides, and both acknowledge it.

Messages go from paho's network thread to a writer thread through a
queue; the writer stores everything queued in one transaction
(Gateway.handle_many), then acknowledges. Gateways without handle_many
(a wrapper that counts, say) get handle() per message. With
$VITALNODE_GW_STATS set, the writer prints every 5 s how many frames it
stored, in how many batches, the slowest batch and the queue depth.
"""
import os
import queue
import threading
import time

import paho.mqtt.client as mqtt

from tools.gateway.core import SETTLED


class Subscriber:
    MAX_BATCH = 500

    def __init__(self, gw, host, port, ca_file, password, user="gateway", live=None,
                 share=None, client_id="vitalnode-gateway", show=True):
        self.gw = gw
        self.live = live  # callable(str) for refusals and live vitals, or None
        self.show = show  # print each stored frame's vitals (not under load)
        self.lock = threading.Lock()
        self.states = {}
        self.connected = threading.Event()
        self.share = share
        self.handled = 0
        self._q = queue.Queue()
        self._stop = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=False)
        c.username_pw_set(user, password)
        c.tls_set(ca_certs=str(ca_file))
        c.reconnect_delay_set(0.05, 1)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.on_socket_open = self._nodelay
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self.client = c
        self.host, self.port = host, port
        self._writer = threading.Thread(target=self._write_loop, name="gateway-writer",
                                        daemon=True)

    @staticmethod
    def _nodelay(c, userdata, sock):
        """PUBACKs and acks go out at once: with Nagle's algorithm each small
        packet waits for the broker's delayed ACK (~40 ms), and with the
        broker's 20 messages in flight per client that caps one worker
        below 500 frames/s."""
        import socket
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def topic(self, t):
        return "$share/%s/%s" % (self.share, t) if self.share else t

    def _on_connect(self, c, userdata, flags, rc, props=None):
        if rc == 0:
            c.subscribe([(self.topic("vn/+/tm"), 1), (self.topic("vn/+/state"), 1)])

    def _on_subscribe(self, c, userdata, mid, reasons, props=None):
        if all(not r.is_failure for r in reasons):
            self.connected.set()  # subscribed: from now on nothing published is missed
        elif self.live:
            self.live("gateway: the broker refused the subscription: %s" % reasons)

    def _on_message(self, c, userdata, m):
        if m.topic.endswith("/state"):
            self.states[m.topic.split("/")[1]] = m.payload.decode(errors="replace")
            return
        self._q.put((m.topic, bytes(m.payload)))

    def _write_loop(self):
        many = getattr(self.gw, "handle_many", None)
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            t_batch = time.monotonic()
            with self.lock:
                if many is not None:
                    outcomes = many(batch)
                else:
                    outcomes = [self.gw.handle(t, p) for t, p in batch]
                for (topic, payload), outcome in zip(batch, outcomes):
                    if outcome in SETTLED:
                        try:
                            self.client.publish(*self.gw.ack(payload), qos=1)
                        except Exception as e:  # noqa: BLE001 - no ack: the node resends
                            if self.live:
                                self.live("gateway: no ack for %s: %s" % (topic, e))
                    if outcome == "stored" and self.live is not None and self.show:
                        self._show(topic.split("/")[1])
                self.handled += len(batch)
            self._stat(len(batch), time.monotonic() - t_batch)
            for _ in batch:
                self._q.task_done()

    def _stat(self, n, dt):
        """With $VITALNODE_GW_STATS: every 5 s, queue depth, batches, slowest batch."""
        if not os.environ.get("VITALNODE_GW_STATS"):
            return
        st = self.__dict__.setdefault("_st", {"t": time.monotonic(), "n": 0, "b": 0, "max": 0.0})
        st["n"] += n
        st["b"] += 1
        st["max"] = max(st["max"], dt)
        if time.monotonic() - st["t"] >= 5:
            print("gateway-stats: %d frames in %d batches, slowest %.0f ms, queued %d, acks "
                  "waiting in paho %d" % (st["n"], st["b"], 1000 * st["max"], self._q.qsize(),
                                          len(getattr(self.client, "_out_messages", ()))),
                  flush=True)
            self.__dict__["_st"] = {"t": time.monotonic(), "n": 0, "b": 0, "max": 0.0}

    def drained(self):
        """True when every message received so far has been handled."""
        return self._q.unfinished_tasks == 0

    def _show(self, dev):
        got = self.gw.latest(dev)
        if not got:
            return
        kind, f = got
        if kind == "vitals":
            hr = "%d bpm" % round(f["hr_x10"] / 10) if f["hr_x10"] else "--"
            sp = "%d %%" % round(f["spo2_x10"] / 10) if f["spo2_x10"] else "--"
            self.live("gateway: %s hr %s spo2 %s quality %d beats %d" % (dev, hr, sp, f["quality"],
                                                                        len(f["beats"])))
        elif kind == "alert":
            from alerts import NAMES  # lib/alerts.py (on the path through tools.gateway.core)
            name = NAMES[f["alert"]] if f["alert"] < len(NAMES) else f["alert"]
            self.live("gateway: %s ALERT %s %s" % (dev, name, "raised" if f["raised"] else "cleared"))

    def start(self, timeout=10):
        self._writer.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise OSError("gateway: cannot log in to the broker at %s:%d" % (self.host, self.port))
        return self

    def stop(self, drain_s=2.0):
        """Store and acknowledge what was already received (up to drain_s),
        then disconnect."""
        deadline = time.monotonic() + drain_s
        while not self.drained() and time.monotonic() < deadline and self._writer.is_alive():
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout=5)
