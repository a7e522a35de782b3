"""The uplink over umqtt.simple (pinned from PyPI) and netguard, against a
scripted fake socket: the exact MQTT 3.1.1 bytes it sends (CONNECT with
login and last will, SUBSCRIBE, PUBLISH QoS 1), frames leave the outbox
only on PUBACK, a lost PUBACK times out instead of blocking, reconnects
back off with jitter, TLS is always asked for with the CA and host name."""
import time

import simboard

from firmware import clock, framedec, frames, outbox, storage
from firmware.uplink import ACK_WAIT_MS, BACKOFF_MAX_MS, BACKOFF_MIN_MS, NO_AP_MS, Uplink
from hmacsha import HMAC, equal

DEV = "240ac4000001"
CA = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n"


class World:
    def __init__(self, replies=b""):
        self.rx = bytearray(replies)  # what the "broker" sends, in order
        self.sent = bytearray()
        self.connects = []
        self.tls = []
        self.refuse = False


class FakeSock:
    def __init__(self, w):
        self.w = w
        self.timeout = None
        self.closed = False

    def settimeout(self, t):
        self.timeout = t

    def connect(self, addr):
        self.w.connects.append(addr)
        if self.w.refuse:
            raise OSError(111)

    def write(self, b):
        self.w.sent.extend(bytes(b))
        return len(b)

    def sendall(self, b):
        self.write(b)

    def _take(self, n):
        if not self.w.rx:
            return None
        out = bytes(self.w.rx[:n])
        self.w.rx = self.w.rx[n:]
        return out

    def read(self, n):  # MicroPython socket API
        out = self._take(n)
        if out is None:
            if self.timeout == 0:
                return None
            raise OSError(110)  # the guard's timeout expired
        while len(out) < n and self.w.rx:
            out += self._take(n - len(out))
        return out

    def recv(self, n):  # CPython socket API
        out = self._take(n)
        if out is None:
            if self.timeout == 0:
                raise BlockingIOError(11, "would block")
            raise TimeoutError("timed out")
        return out

    def close(self):
        self.closed = True


class FakeNet:
    """`socket` and `ssl` for the uplink."""

    def __init__(self, w):
        self.w = w
        self.PROTOCOL_TLS_CLIENT = 16
        self.CERT_REQUIRED = 2
        net = self

        class SSLContext:
            def __init__(self, proto):
                self.verify_mode = None
                self.ca = None
                self.ciphers = None

            def load_verify_locations(self, cadata=None):
                self.ca = cadata

            def set_ciphers(self, ciphers):  # a list (MicroPython's tls) or a string (CPython)
                self.ciphers = ":".join(ciphers) if isinstance(ciphers, list) else ciphers

            def wrap_socket(self, sock, server_hostname=None):
                net.w.tls.append((self.verify_mode, self.ca, server_hostname, self.ciphers))
                return sock
        self.SSLContext = SSLContext

    def socket(self, *a):
        return FakeSock(self.w)

    def getaddrinfo(self, host, port, *a):
        return [(2, 1, 6, "", (host, port))]


def _s(b):
    return bytes([len(b) >> 8, len(b) & 255]) + b


def _packet(first, body):
    n = len(body)
    rl = bytearray()
    while True:
        d = n & 0x7F
        n >>= 7
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body


_KEY = HMAC(b"telemetry-sub-key-of-this-node-!")
_DEV6 = bytes([0x24, 0x0A, 0xC4, 0, 0, 1])


def _ack_check(msg):  # what firmware/telemetry.Telemetry.ack_seq does with the real key
    return frames.ack_seq(msg, _DEV6, _KEY.digest, equal)


def _setup(replies, e2e=False):
    b = simboard.new_board()
    storage.use(b.fs)
    w = World(replies)
    net = FakeNet(w)
    up = Uplink(DEV, {"host": "broker.ward", "port": 8883}, CA, "pw", net_socket=net, net_ssl=net,
                ack_check=_ack_check if e2e else None)
    return w, up, outbox.Outbox()


CONNACK = b"\x20\x02\x00\x00"
SUBACK = b"\x90\x03\x00\x01\x01"


def _puback(pid):
    return b"\x40\x02" + bytes([pid >> 8, pid & 255])


def test_connect_subscribe_and_publish_send_exact_mqtt_bytes_and_ack_deletes():
    w, up, box = _setup(CONNACK + SUBACK + _puback(2) + _puback(3) + _puback(4))
    box.put(frames.VITALS, 0, b"F0")
    box.put(frames.ALERT, 1, b"F1")
    up.service(box)
    assert up.up and box.depth == 0 and up.published == 2
    dev = DEV.encode()
    state = b"vn/" + dev + b"/state"
    # CONNECT: MQTT 3.1.1, clean session, will QoS 1 retained, user, password, keepalive 60
    connect = _packet(0x10, _s(b"MQTT") + b"\x04\xee\x00\x3c" + _s(dev) + _s(state)
                      + _s(b"offline") + _s(dev) + _s(b"pw"))
    sub = _packet(0x82, b"\x00\x01" + _s(b"vn/" + dev + b"/cmd") + b"\x01")
    online = _packet(0x33, _s(state) + b"\x00\x02" + b"online")
    tm = b"vn/" + dev + b"/tm"
    f0 = _packet(0x32, _s(tm) + b"\x00\x03" + b"F0")
    f1 = _packet(0x32, _s(tm) + b"\x00\x04" + b"F1")
    assert bytes(w.sent) == connect + sub + online + f0 + f1
    assert w.connects == [("broker.ward", 8883)]
    # CERT_REQUIRED, the CA's DER, SNI, and only RSA key transport offered (no
    # ECDHE: its public-key step would stop the sampler's timer for seconds)
    (mode, ca, sni, ciphers), = w.tls
    assert (mode, ca, sni) == (2, b"\x00\x01\x02\x03", "broker.ward")
    assert ciphers in ("TLS-RSA-WITH-AES-128-GCM-SHA256:TLS-RSA-WITH-AES-256-GCM-SHA384",
                       "AES128-GCM-SHA256:AES256-GCM-SHA384")


def test_a_lost_puback_times_out_keeps_the_frame_and_backs_off():
    w, up, box = _setup(CONNACK + SUBACK + _puback(2))  # no PUBACK for the frame
    box.put(frames.VITALS, 0, b"F0")
    up.service(box)
    assert not up.up and box.depth == 1 and up.failures == 1 and "110" in up.last_error
    w.rx = bytearray(CONNACK + SUBACK + _puback(2) + _puback(3))
    up.service(box)
    assert not up.up and len(w.connects) == 1  # backing off: no attempt yet
    time.sleep_ms(BACKOFF_MIN_MS * 5 // 4 + 1)
    up.service(box)
    assert up.up and box.depth == 0 and len(w.connects) == 2


def test_reconnect_delays_grow_with_jitter_and_stop_at_the_cap():
    w, up, box = _setup(b"")
    w.refuse = True
    waits = []
    for _ in range(9):
        t0 = time.ticks_ms()
        n = len(w.connects)
        while len(w.connects) == n:
            time.sleep_ms(50)
            up.service(box)
        waits.append(time.ticks_diff(time.ticks_ms(), t0))
    assert up.failures == 9 and not up.up
    for i in range(1, 6):  # 1 s, 2 s, 4 s ... 16 s, each within +-25 % (+ one 50 ms step)
        base = BACKOFF_MIN_MS << (i - 1)
        assert base * 3 // 4 <= waits[i] <= base * 5 // 4 + 50, (i, waits)
    assert waits[-1] <= BACKOFF_MAX_MS * 5 // 4 + 50


def test_a_refused_login_is_a_failed_attempt_not_a_crash():
    w, up, box = _setup(b"\x20\x02\x00\x05")  # CONNACK: not authorized
    box.put(frames.ALERT, 0, b"A")
    up.service(box)
    assert not up.up and up.failures == 1 and box.depth == 1


# end to end: the gateway's acknowledgement, not the broker's PUBACK, frees a frame

ACK_TOPIC = b"vn/" + DEV.encode() + b"/ack"
E2E_HELLO = CONNACK + SUBACK + b"\x90\x03\x00\x02\x00" + _puback(3)  # cmd QoS 1, ack QoS 0, online


def _ack_msg(seq, forged=False):
    msg = bytearray(framedec.ack(_DEV6, seq, _KEY.digest))
    if forged:
        msg[-1] ^= 1
    return _packet(0x30, _s(ACK_TOPIC) + bytes(msg))  # QoS 0 PUBLISH to the node


def test_a_frame_stays_on_flash_until_the_gateway_acknowledges_it():
    w, up, box = _setup(E2E_HELLO + _puback(4) + _puback(5), e2e=True)
    box.put(frames.VITALS, 0, b"F0")
    box.put(frames.ALERT, 1, b"F1")
    up.service(box)
    sub_ack = _packet(0x82, b"\x00\x02" + _s(ACK_TOPIC) + b"\x00")
    assert sub_ack in bytes(w.sent)  # subscribed at QoS 0: a lost ack only means a resend
    assert up.up and up.published == 2 and box.depth == 2 and box.in_flight == 2
    assert box.oldest() is None  # both published on this connection, none to send again
    w.rx.extend(_ack_msg(1) + _ack_msg(0, forged=True))
    up.service(box)
    assert up.acked == 1 and up.bad_acks == 1 and box.depth == 1  # F1 gone, F0 kept
    w.rx.extend(_ack_msg(0) + _ack_msg(0))  # a repeated ack finds nothing left to delete
    up.service(box)
    assert up.acked == 2 and box.depth == 0 and not storage.fs().listdir("outbox")


def test_unacknowledged_frames_go_again_on_a_new_connection():
    w, up, box = _setup(E2E_HELLO + _puback(4), e2e=True)
    box.put(frames.VITALS, 7, b"F7")
    up.service(box)
    assert box.depth == 1 and up.published == 1
    up.close()  # the broker went away (and perhaps with the frame)
    sent_before = len(w.sent)
    w.rx = bytearray(E2E_HELLO + _puback(4))
    up.service(box)
    f7 = _packet(0x32, _s(b"vn/" + DEV.encode() + b"/tm") + b"\x00\x04" + b"F7")
    assert bytes(w.sent[sent_before:]).endswith(f7) and up.resent == 1 and up.published == 2
    w.rx.extend(_ack_msg(7))
    up.service(box)
    assert box.depth == 0 and up.acked == 1


def test_no_acknowledgement_in_time_sends_again_then_waits_longer():
    w, up, box = _setup(E2E_HELLO + _puback(4), e2e=True)
    box.put(frames.VITALS, 3, b"F3")
    up.service(box)
    time.sleep_ms(ACK_WAIT_MS + 1)
    w.rx.extend(_puback(5))
    up.service(box)
    assert up.resent == 1 and up.published == 2 and box.depth == 1
    time.sleep_ms(ACK_WAIT_MS + 1)  # the wait doubled: not yet
    up.service(box)
    assert up.resent == 1
    time.sleep_ms(ACK_WAIT_MS)
    w.rx.extend(_puback(6))
    up.service(box)
    assert up.resent == 2 and up.up
    w.rx.extend(_ack_msg(3))
    up.service(box)
    assert box.depth == 0 and up.acked == 1


def test_an_acknowledgement_is_bound_to_the_device_the_seq_and_the_key():
    good = framedec.ack(_DEV6, 41, _KEY.digest)
    assert _ack_check(good) == 41
    other_dev = framedec.ack(bytes([0x24, 0x0A, 0xC4, 0, 0, 2]), 41, _KEY.digest)
    other_key = framedec.ack(_DEV6, 41, HMAC(b"another-node-key-xxxxxxxxxxxxxxx").digest)
    moved = bytes([0, 0, 0, 42]) + good[4:]  # the tag of 41 on seq 42
    for bad in (other_dev, other_key, moved, good[:-1], good + b"\0", b""):
        assert _ack_check(bad) == -1


# trusted time: the gateway's acknowledgement carries its clock (frames.ack version 2)

T_GW = 1800000000


class _Keys:  # the keystore's two things Telemetry keeps
    device_id = DEV

    def mac(self, purpose):
        return _KEY


_TIMED_HELLO = E2E_HELLO + _puback(4)


def _timed(replies=_TIMED_HELLO):
    """An uplink wired as firmware/start.py wires it: Telemetry checks the
    acknowledgements with the node's key and sets the clock from them."""
    import esp32

    from firmware.seqno import SeqNo
    from firmware.telemetry import Telemetry
    b = simboard.new_board()
    storage.use(b.fs)
    w = World(replies)
    net = FakeNet(w)
    box = outbox.Outbox()
    tm = Telemetry(_Keys(), box, SeqNo(esp32.NVS("vn_tel")), 6000)
    up = Uplink(DEV, {"host": "broker.ward", "port": 8883}, CA, "pw", net_socket=net, net_ssl=net,
                ack_check=tm.ack_seq, on_time=tm.sync_clock)
    return w, up, box, tm


def _ack2(seq, t, key=_KEY):
    return _packet(0x30, _s(ACK_TOPIC) + framedec.ack(_DEV6, seq, key.digest, t))


def test_the_clock_is_set_only_by_an_authentic_prompt_acknowledgement_and_frames_then_carry_it():
    w, up, box, tm = _timed()
    box.put(frames.VITALS, 5, b"F5")
    up.service(box)
    time.sleep_ms(300)
    forged = bytearray(framedec.ack(_DEV6, 5, _KEY.digest, T_GW))
    forged[4:8] = (T_GW + 86400).to_bytes(4, "big")  # another time under the tag
    w.rx.extend(_packet(0x30, _s(ACK_TOPIC) + bytes(forged))
                + _ack2(5, T_GW + 3600, HMAC(b"another-node-key-xxxxxxxxxxxxxxx")))
    up.service(box)
    assert up.bad_acks == 2 and box.depth == 1 and clock.now_unix() == 0
    tm.security({"ev": "probe"})  # no trusted time: the frame carries the boot number
    d = framedec.decode(box.read(box.oldest()))
    assert d["wall"] is False
    w.rx.extend(_ack2(5, T_GW))
    up.service(box)
    assert up.acked == 1 and abs(clock.now_unix() - T_GW) <= 1
    tm.security({"ev": "probe"})
    names = sorted(storage.fs().listdir("outbox"))
    d = framedec.decode(box.read(names[-1]))
    assert d["wall"] is True and abs(d["time"] - T_GW) <= 1


def test_a_late_or_resent_frames_acknowledgement_frees_the_frame_but_sets_no_time():
    w, up, box, tm = _timed()
    box.put(frames.VITALS, 5, b"F5")
    up.service(box)
    time.sleep_ms(clock.RTT_MAX_MS + 1)  # the answer took longer than a round trip may
    w.rx.extend(_ack2(5, T_GW))
    up.service(box)
    assert up.acked == 1 and box.depth == 0 and clock.now_unix() == 0
    box.put(frames.VITALS, 6, b"F6")
    w.rx.extend(_puback(5))
    up.service(box)
    time.sleep_ms(ACK_WAIT_MS + 1)
    w.rx.extend(_puback(6))
    up.service(box)  # sent again: whose copy the gateway stamped is unknown
    assert up.resent == 1
    w.rx.extend(_ack2(6, T_GW))
    up.service(box)
    assert up.acked == 2 and box.depth == 0 and clock.now_unix() == 0
    box.put(frames.VITALS, 7, b"F7")  # a version 1 ack (an older gateway): no time in it
    w.rx.extend(_puback(7))
    up.service(box)
    w.rx.extend(_ack_msg(7))
    up.service(box)
    assert up.acked == 3 and clock.now_unix() == 0


def test_a_gateway_time_before_2024_is_no_time():
    w, up, box, tm = _timed()
    box.put(frames.VITALS, 5, b"F5")
    up.service(box)
    w.rx.extend(_ack2(5, 1000))
    up.service(box)
    assert up.acked == 1 and clock.now_unix() == 0


def test_the_uplink_lets_the_wifi_driver_reconnect_and_never_connects_into_it():
    """On the ESP32 a second WLAN.connect() while the driver retries raises
    OSError("Wifi Internal Error"): the uplink calls it once and rides the
    driver's own reconnection through a drop, without an exception."""
    import network
    b = simboard.new_board()
    storage.use(b.fs)
    b.wifi.add_ap("ward", "pw")
    wlan = network.WLAN(network.STA_IF)
    w = World(CONNACK + SUBACK + _puback(1))
    net = FakeNet(w)
    up = Uplink(DEV, {"host": "broker.ward", "port": 8883}, CA, "pw", wlan=wlan,
                wifi={"ssid": "ward", "password": "pw"}, net_socket=net, net_ssl=net)
    box = outbox.Outbox()
    b.wifi.drop_at(10000)
    b.wifi.down = False
    t_end = time.ticks_add(time.ticks_ms(), 60000)

    def outage_on():
        b.wifi.down = True
        b.wifi.drop()

    def outage_off():
        b.wifi.down = False
    b.clock.call_at(20000 * 1000, outage_on)
    b.clock.call_at(50000 * 1000, outage_off)
    seen_up = []
    while time.ticks_diff(t_end, time.ticks_ms()) > 0:
        up.service(box)  # raises nothing, whatever the radio does
        seen_up.append(wlan.isconnected())
        time.sleep_ms(100)
    r = b.wlans[0]
    assert wlan.isconnected() and r.attempts > 3  # the driver retried by itself
    assert False in seen_up and seen_up[-1]
    assert up.last_error is None or "Internal" not in up.last_error


def test_no_access_point_in_range_is_told_after_no_ap_ms_and_a_stale_status_ends_no_batch():
    """A batch out of coverage can end after NO_AP_MS instead of 15 s. The
    port keeps the last disconnection's reason until GOT_IP, so the next
    batch starts with NO_AP_FOUND though the access point is back: that
    batch must not be ended by it, and connects."""
    import network
    b = simboard.new_board()
    storage.use(b.fs)
    b.wifi.add_ap("ward", "pw")
    b.wifi.down = True  # out of range
    wlan = network.WLAN(network.STA_IF)
    w = World(CONNACK + SUBACK + _puback(1))
    up = Uplink(DEV, {"host": "broker.ward", "port": 8883}, CA, "pw", wlan=wlan,
                wifi={"ssid": "ward", "password": "pw"}, net_socket=FakeNet(w), net_ssl=FakeNet(w))
    box = outbox.Outbox()
    t0 = time.ticks_ms()
    told = None
    while told is None and time.ticks_diff(time.ticks_ms(), t0) < 15000:
        up.service(box)
        if up.no_ap(time.ticks_ms()):
            told = time.ticks_diff(time.ticks_ms(), t0)
        time.sleep_ms(100)
    assert told is not None and NO_AP_MS <= told <= NO_AP_MS + 200, told
    assert wlan.status() == network.STAT_NO_AP_FOUND
    up.radio_off()
    b.wifi.down = False  # back in range
    t0 = time.ticks_ms()
    up.service(box)
    assert wlan.status() == network.STAT_NO_AP_FOUND  # stale: the port clears it only at GOT_IP
    while not wlan.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < NO_AP_MS:
        assert not up.no_ap(time.ticks_ms())
        up.service(box)
        time.sleep_ms(100)
    assert wlan.isconnected() and not up.no_ap(time.ticks_ms())


def test_batches_that_cannot_connect_space_out_to_the_cap_but_not_while_an_alert_waits():
    from firmware.uplink import batch_wait
    # a broker restart or a brief WiFi gap: the next batch on the minute as usual
    assert batch_wait(0, 60, 180, 0) == 60 and batch_wait(1, 60, 180, 0) == 60
    # an outage: 2x, 4x ... the batch period, up to the cap, however long it lasts
    assert [batch_wait(f, 60, 180, 0) for f in (2, 3, 4, 50)] == [120, 180, 180, 180]
    assert [batch_wait(f, 30, 900, 0) for f in (2, 3, 4, 5, 6, 40)] == [60, 120, 240, 480, 900, 900]
    # an alert in the outbox keeps the cadence: its delivery is worth the current
    assert batch_wait(7, 60, 180, 1) == 60
