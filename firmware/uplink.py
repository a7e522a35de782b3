"""The uplink: WiFi, then MQTT over TLS to the broker, publishing the
outbox in order and reading the node's command topic.

    up = Uplink(device_id, cfg["broker"], cfg["ca_cert"], ks.broker_password(),
                wlan=network.WLAN(network.STA_IF), wifi=cfg["wifi"])
    while True:
        up.service(box)      # never blocks longer than one timeout_ms step

Topics (README "Telemetry"): vn/<device id>/tm frames (binary, QoS 1);
vn/<device id>/state "online" (retained), and "offline" as the last will;
vn/<device id>/cmd subscribed (QoS 1), given to on_command(bytes);
vn/<device id>/ack subscribed (QoS 0) when ack_check is given: the
gateway's authenticated acknowledgements (firmware/frames.ack).
Broker login: user = device id, password = keystore.broker_password()
(derived from the device key; the broker never sees the key).

Guarantees:
- with ack_check, a frame leaves the outbox only when the gateway says it
  has stored it (end to end: a broker that PUBACKs and then crashes before
  the gateway got the frame loses nothing); frames not acknowledged are
  published again on every new connection, and a frame is published again
  when ACK_WAIT_MS pass without its acknowledgement (the wait doubles up to
  ACK_WAIT_MAX_MS until everything in flight is confirmed); without
  ack_check, a frame leaves after its PUBACK;
- a broken connection mid-publish leaves the frame queued for the next
  connection, which sends it again;
- no call blocks longer than timeout_ms per socket operation (netguard);
  any failure - socket error, timeout, a protocol error umqtt.simple
  reports by assertion - closes the connection and schedules a reconnect;
- reconnects back off exponentially from 1 s to 30 s with +-25 % jitter
  (a fleet does not reconnect in lock-step after a broker restart), and
  resubscribe to the command topic;
- WiFi: connect() once; the ESP32 port's driver reconnects by itself, and
  connect() is never called into an attempt under way (it would raise).
Non-guarantees: at most BURST frames per service() call (the caller's
loop stays responsive); one connection attempt (TCP + TLS + CONNECT) can
take several timeout_ms steps, so the sampler must not depend on this
loop: firmware/app.py drains the FIFO from a timer.
"""
import time

from micropython import const

BACKOFF_MIN_MS = const(1000)
BACKOFF_MAX_MS = const(30000)
WIFI_TIMEOUT_MS = const(15000)
# a batch may end when no access point has been found this long (see no_ap)
NO_AP_MS = const(6000)
_STAT_NO_AP_FOUND = const(201)  # network.STAT_NO_AP_FOUND on the ESP32 port
KEEPALIVE_S = const(60)
BURST = const(8)
ACK_READS = const(16)  # incoming messages read per service() call
ACK_WAIT_MS = const(20000)
ACK_WAIT_MAX_MS = const(300000)


def batch_wait(fails, uplink_s, retry_max_s, alerts_queued):
    """Seconds from a power-saving batch's start to the next one, after
    `fails` batches in a row that could not connect (firmware/app.py):
    uplink_s for the first failure (a broker restart, a brief WiFi gap),
    then doubling - 2x, 4x ... - up to retry_max_s, so an outage of hours
    does not keep the radio trying every minute. While an alert waits in
    the outbox the cadence stays uplink_s: its delivery is worth the
    current."""
    if fails < 2 or alerts_queued:
        return uplink_s
    w = uplink_s << (fails - 1 if fails < 12 else 11)
    return w if w < retry_max_s else retry_max_s


def topics(device_id):
    """(telemetry, state, command, ack) topics as bytes (what umqtt.simple sends)."""
    base = "vn/%s/" % device_id
    return ((base + "tm").encode(), (base + "state").encode(), (base + "cmd").encode(),
            (base + "ack").encode())


class Uplink:
    def __init__(self, device_id, broker, ca_pem, password, wlan=None, wifi=None,
                 timeout_ms=5000, net_socket=None, net_ssl=None, on_command=None,
                 ack_check=None, on_time=None):
        """ack_check(msg) -> the sequence number an authentic gateway
        acknowledgement confirms, or -1 (see Keystore-bound frames.ack_seq).
        on_time(rtt_ms): the acknowledgement ack_check just found authentic
        confirms the newest frame, published once, rtt_ms ago (its time
        may set the clock: Telemetry.sync_clock)."""
        from firmware.netguard import pem_to_der
        self.device_id = device_id
        self.host = broker["host"]  # the name in the broker's certificate
        self.addr = broker.get("addr") or self.host  # where to connect (an address: no DNS)
        self.port = broker["port"]
        self._ca = pem_to_der(ca_pem)
        self._password = password
        self._wlan = wlan
        self._wifi = wifi
        self._wifi_since = None
        self._wifi_started = False
        self.timeout_ms = timeout_ms
        self._net = (net_socket, net_ssl)
        self.on_command = on_command
        self.t_tm, self.t_state, self.t_cmd, self.t_ack = topics(device_id)
        self.ack_check = ack_check
        self.on_time = on_time
        self._probe_ms = -1  # when the newest frame went out, while it went out once
        self._box = None
        self._ack_wait = ACK_WAIT_MS
        self.acked = 0  # frames the gateway confirmed
        self.resent = 0  # publishes of a frame already published once (since boot)
        self._newest = ""  # newest outbox name published: names sort in sequence order
        self.bad_acks = 0
        self.received = 0  # messages from the broker
        self._c = None
        self._backoff = BACKOFF_MIN_MS
        self._next_ms = time.ticks_ms()
        self._last_tx = 0
        self.connects = 0
        self.failures = 0
        self.published = 0
        self.last_error = None
        # the MQTT client's code and the TLS context now, while the heap is
        # young (firmware/netguard.Tls: a 1.7 KB object a reconnect reuses)
        from firmware import netguard
        try:
            netguard.install(timeout_ms, net_socket, net_ssl)
            netguard.tls_context(self._ca)
        except (ImportError, OSError, ValueError) as e:  # no TLS, or a CA it cannot
            self.last_error = "tls: %r" % (e,)  # parse: each connect attempt says so

    @property
    def up(self):
        return self._c is not None

    def _wifi_ok(self, now):
        """WiFi up? connect() is called once: from then on the ESP32 port
        retries by itself, forever (ports/esp32/network_wlan.c), and a
        second connect() while it does raises OSError("Wifi Internal
        Error"). So it is called again only if the first one raised."""
        w = self._wlan
        if w is None or w.isconnected():
            self._wifi_since = None
            return True
        if not self._wifi_started:
            try:
                wifi = self._wifi
                assert wifi is not None  # given with wlan (-O3 drops asserts on the node)
                w.active(True)
                w.connect(wifi["ssid"], wifi["password"])
                self._wifi_started = True
            except OSError as e:
                self._fail("wifi: %r" % (e,), now)
        if self._wifi_since is None:
            self._wifi_since = now
        elif time.ticks_diff(now, self._wifi_since) > WIFI_TIMEOUT_MS:
            self._fail("wifi: no connection in %d ms (status %d)" % (WIFI_TIMEOUT_MS, w.status()),
                       now)
            self._wifi_since = now  # the driver keeps trying; report again later
        return False

    def no_ap(self, now):
        """True when this connection attempt has waited NO_AP_MS for Wi-Fi
        and status() is STAT_NO_AP_FOUND: no access point in range (a
        patient out of coverage), so a power-saving batch can end instead
        of keeping the receiver on; the driver would go on retrying. Why
        the wait: the port's status() reports the last disconnection's
        reason and clears it only at GOT_IP (ports/esp32/network_wlan.c,
        network_wlan_status; neither active() nor connect() clears it), so
        a batch begins with the last one's NO_AP_FOUND even when the access
        point is back - 6 s lets a present one be scanned for and joined
        (the simulator's worst-case attempt takes 4 s)."""
        s, w = self._wifi_since, self._wlan
        return (s is not None and w is not None and time.ticks_diff(now, s) >= NO_AP_MS
                and w.status() == _STAT_NO_AP_FOUND)

    def _connect(self):
        from firmware import netguard
        simple = netguard.install(self.timeout_ms, self._net[0], self._net[1])
        dev = self.device_id.encode()
        c = simple.MQTTClient(dev, self.addr, self.port, user=dev, password=self._password.encode(),
                              keepalive=KEEPALIVE_S, ssl=True,
                              ssl_params={"cadata": self._ca, "server_hostname": self.host})
        c.set_last_will(self.t_state, b"offline", retain=True, qos=1)
        c.set_callback(self._on_msg)
        try:
            c.connect()
            c.subscribe(self.t_cmd, qos=1)
            if self.ack_check is not None:
                c.subscribe(self.t_ack, qos=0)
            c.publish(self.t_state, b"online", retain=True, qos=1)
        except BaseException:
            if c.sock is not None:
                c.sock.close()
            raise
        self._c = c

    def _on_msg(self, topic, msg):
        self.received += 1
        if topic == self.t_ack and self.ack_check is not None:
            seq = self.ack_check(msg)
            if seq < 0:
                self.bad_acks += 1  # forged or garbled: the frame stays queued
            elif self._box is not None:
                name = self._box.acked(seq)
                if name is None:
                    return
                self.acked += 1
                if name == self._newest and self._probe_ms >= 0:
                    if self.on_time is not None:  # a round trip we can bound: a time to take
                        self.on_time(time.ticks_diff(time.ticks_ms(), self._probe_ms))
                    self._probe_ms = -1
                if not self._box.in_flight:
                    self._ack_wait = ACK_WAIT_MS  # all confirmed: the gateway keeps up
        elif self.on_command is not None and topic == self.t_cmd:
            self.on_command(msg)

    def _fail(self, why, now):
        self.failures += 1
        self.last_error = why
        import random
        jitter = (self._backoff * (random.getrandbits(8) - 128)) // 512  # +-25 %
        self._next_ms = time.ticks_add(now, self._backoff + jitter)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_MS)

    def close(self):
        if self._c is not None:
            if self._c.sock is not None:
                self._c.sock.close()
            self._c = None

    def radio_off(self):
        """End a batch (power saving): an MQTT DISCONNECT - the broker keeps
        the retained "online", a planned absence, not the last will - then
        the radio off. The next service() turns it on and connects at once
        (no back-off carried over: a batch is not a failure)."""
        if self._c is not None:
            try:
                self._c.disconnect()
                self._c = None
            except Exception:  # noqa: BLE001 - going away either way
                self.close()
        w = self._wlan
        if w is not None:
            w.active(False)
        self._wifi_started = False
        self._wifi_since = None
        self.retry_now()

    def retry_now(self):
        """The next service() connects at once, whatever the back-off was."""
        self._backoff = BACKOFF_MIN_MS
        self._next_ms = time.ticks_ms()

    def service(self, box):
        """Connect when due, publish up to BURST queued frames, read commands."""
        now = time.ticks_ms()
        if self._c is None:
            if not self._wifi_ok(now) or time.ticks_diff(now, self._next_ms) < 0:
                return
            try:
                self._connect()
            except Exception as e:  # noqa: BLE001 - any failure is a failed attempt
                self._fail("connect: %r" % (e,), now)
                return
            self.connects += 1
            self._backoff = BACKOFF_MIN_MS
            self._last_tx = now
            box.resend()  # acknowledgements of the old connection may be lost
        elif self._wlan is not None and not self._wlan.isconnected():
            self.close()
            self._fail("wifi lost", now)
            return
        self._box = box
        e2e = self.ack_check is not None
        if e2e:
            since = box.sent_since()
            if since is not None and time.ticks_diff(now, since) > self._ack_wait:
                box.resend(now, self._ack_wait)  # only those waiting that long
                self._ack_wait = min(self._ack_wait * 2, ACK_WAIT_MAX_MS)
        c = self._c
        assert c is not None  # connected above (-O3 drops asserts on the node)
        try:
            for _ in range(BURST):
                name = box.oldest()
                if name is None:
                    break
                c.publish(self.t_tm, box.read(name), qos=1)
                if name > self._newest:
                    self._newest = name
                    self._probe_ms = now
                else:
                    self.resent += 1
                    if name == self._newest:  # twice: whose copy an ack stamped is unknown
                        self._probe_ms = -1
                if e2e:
                    box.sent(name, now)
                else:
                    box.ack(name)
                self.published += 1
                self._last_tx = now
            for _ in range(ACK_READS):  # umqtt.simple says None for "nothing" and "one message"
                n = self.received
                c.check_msg()
                if self.received == n:
                    break
            if time.ticks_diff(now, self._last_tx) > KEEPALIVE_S * 500:
                c.ping()
                self._last_tx = now
        except Exception as e:  # noqa: BLE001 - the connection is gone either way
            self.close()
            self._fail("link: %r" % (e,), now)
