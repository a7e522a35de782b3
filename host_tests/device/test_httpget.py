"""The OTA download's overall deadline (issue 19 §5): a server that drips
its headers or body one byte per socket timeout, or spreads the bundle over
many slow fetches, holds the node no longer than the deadline; each socket
call waits at most what is left of it. A fake network on a fake clock:
the same on CPython and both VMs."""
from devtest import raises

from firmware.httpget import Deadline, HttpSource


class Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


class DripSocket:
    """Sends `data` `per_read` bytes per read, each read taking `gap_ms` (or
    the socket's timeout, whichever is shorter: then it times out)."""

    def __init__(self, net, data, gap_ms, per_read=1):
        self.net, self.data, self.gap_ms, self.per_read = net, data, gap_ms, per_read
        self.timeout_ms = None

    def settimeout(self, t):
        self.timeout_ms = int(t * 1000 + 0.5)
        self.net.timeouts.append(self.timeout_ms)

    def connect(self, addr):
        self.net.clock.ms += 5

    def write(self, b):
        pass

    def readinto(self, buf):
        if self.gap_ms > self.timeout_ms:
            self.net.clock.ms += self.timeout_ms
            raise OSError(110)  # ETIMEDOUT
        self.net.clock.ms += self.gap_ms
        n = min(len(buf), self.per_read, len(self.data))
        buf[:n] = self.data[:n]
        self.data = self.data[n:]
        return n

    def close(self):
        pass


class Net:
    SOCK_STREAM = 1

    def __init__(self, clock, replies):
        self.clock, self.replies, self.timeouts = clock, list(replies), []

    def getaddrinfo(self, host, port, af, kind):
        return [(2, kind, 0, "", ("10.0.0.2", port))]

    def socket(self, af, kind):
        data, gap_ms, per_read = self.replies.pop(0)
        return DripSocket(self, data, gap_ms, per_read)


def reply(body):
    return b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def source(replies, deadline_ms=10000, timeout_ms=2000):
    clock = Clock()
    net = Net(clock, replies)
    return HttpSource("http://updates.local:8070/", timeout_ms=timeout_ms,
                      deadline_ms=deadline_ms, net=net, clock=clock), clock, net


def read_all(r):
    out = bytearray()
    buf = bytearray(64)
    while True:
        n = r.readinto(buf)
        if not n:
            return bytes(out)
        out.extend(buf[:n])


def test_a_prompt_server_is_read_whole():
    src, clock, _ = source([(reply(b"x" * 300), 1, 64)])
    assert read_all(src.fetch("manifest.vnm", 1000)) == b"x" * 300
    assert clock.ms < 100


def test_headers_dripped_a_byte_per_timeout_end_at_the_deadline():
    src, clock, net = source([(reply(b"x" * 10), 1900, 1)])  # each byte just inside 2 s
    e = raises(Deadline, src.fetch, "manifest.vnm", 1000)
    assert e.reason == "deadline" and "10 s deadline" in str(e)
    assert 10000 <= clock.ms <= 10000 + 1900
    assert max(net.timeouts) <= 2000 and net.timeouts[-1] <= 10000 - (clock.ms - 1900) + 1


def test_a_body_dripped_slowly_ends_at_the_deadline_too():
    src, clock, net = source([(reply(b"y" * 100), 700, 1)], deadline_ms=60000)
    r = src.fetch("files/firmware/app.mpy", 1000)  # the headers arrive in time (~27 s)
    assert clock.ms < 60000
    raises(Deadline, read_all, r)  # the body would need 70 s more
    assert 60000 <= clock.ms <= 60000 + 700


def test_the_last_wait_is_cut_to_what_is_left():
    # a silent server: a wait takes the full per-call timeout, the last one only the rest
    silent = (b"HTTP/1.0 2", 9000, 1)
    src, clock, net = source([silent, silent], deadline_ms=7000, timeout_ms=5000)
    e = raises(OSError, src.fetch, "manifest.vnm", 10)
    assert not isinstance(e, Deadline) and net.timeouts[-1] == 5000 and clock.ms == 5005
    raises(Deadline, src.fetch, "manifest.vnm", 10)  # a retry gets only what is left
    assert clock.ms == 7000 and net.timeouts[-1] == 7000 - 5010


def test_the_deadline_spans_every_fetch_of_a_download():
    part = reply(b"p" * 40)  # 39 header bytes read one by one, the body 8 at a time
    src, clock, _ = source([(part, 100, 8)] * 3)  # 100 ms a read: 4.4 s a fetch
    read_all(src.fetch("manifest.vnm", 100))
    read_all(src.fetch("files/a", 100))
    assert 8800 <= clock.ms < 8900
    raises(Deadline, lambda: read_all(src.fetch("files/b", 100)))
    assert 10000 <= clock.ms <= 10000 + 100


def test_an_update_held_past_its_deadline_is_refused_by_name():
    import otafixture as fx

    from firmware import ota, seclog
    from firmware.otamanifest import OtaError
    fx.deployed({"firmware/app.py": b"print('v1')\n"})
    src, clock, _ = source([(reply(b"m" * 50), 1900, 1)])
    e = raises(OtaError, ota.install, src, None, fx.N, now_s=1800000000)
    assert e.reason == "deadline" and clock.ms <= 10000 + 1900
    assert seclog.events()[-1]["reason"] == "deadline"
