"""The gateway on the broker: subscribes to every node's telemetry and state
with its read-only login, hands each message to Gateway.handle, prints live
vitals.

    sub = Subscriber(gw, "localhost", port, ca_pem_path, password).start()
    ...
    sub.stop()

QoS 1 subscription with a persistent session (clean_session False), so a
message the broker accepted while the gateway was away is delivered on
reconnect; paho reconnects by itself after a broker restart. Every frame
stored (or already stored) is acknowledged on vn/<id>/ack: the node keeps
a frame on its flash until then, so what a broker accepted and lost in a
crash is published again.
"""
import threading

import paho.mqtt.client as mqtt



class Subscriber:
    def __init__(self, gw, host, port, ca_file, password, user="gateway", live=None):
        self.gw = gw
        self.live = live  # callable(str) for live vitals, or None
        self.lock = threading.Lock()
        self.states = {}
        self.connected = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="vitalnode-gateway",
                        clean_session=False)
        c.username_pw_set(user, password)
        c.tls_set(ca_certs=str(ca_file))
        c.reconnect_delay_set(0.05, 1)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c
        self.host, self.port = host, port

    def _on_connect(self, c, userdata, flags, rc, props=None):
        if rc == 0:
            c.subscribe([("vn/+/tm", 1), ("vn/+/state", 1)])
            self.connected.set()

    def _on_message(self, c, userdata, m):
        if m.topic.endswith("/state"):
            self.states[m.topic.split("/")[1]] = m.payload.decode(errors="replace")
            return
        with self.lock:
            outcome = self.gw.handle(m.topic, m.payload)
            if outcome in ("stored", "duplicate"):
                c.publish(*self.gw.ack(m.payload), qos=1)
            if outcome == "stored" and self.live is not None:
                self._show(m.topic.split("/")[1])

    def _show(self, dev):
        kind, f = self.gw.latest(dev)
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
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise OSError("gateway: cannot log in to the broker at %s:%d" % (self.host, self.port))
        return self

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()
