"""A bounded HTTP/1.0 GET for fetching OTA bundles: one request per
connection, a hard byte cap per response, a timeout on every socket call
and one overall deadline for the whole download.

    from firmware.httpget import HttpSource
    src = HttpSource("https://updates.example/vitalnode/", ca_der=ca,
                     timeout_ms=10000, deadline_ms=DEADLINE_MS)
    r = src.fetch("manifest.vnm", 8192)    # OSError unless 200 + length <= cap
    n = r.readinto(buf)                     # ... 0 at the end; r.close()

Guarantees: a response must be 200 with a Content-Length no larger than
the cap, and no more than that many body bytes are ever read (endless-data
defence); headers are capped at _HEAD_MAX; no call blocks longer than
timeout_ms, and the whole download - every fetch of this source: DNS
excepted, connect, TLS handshake, headers, body - ends by deadline_ms
after its first fetch began (Deadline, an OSError with .reason
"deadline"): each socket call's timeout is cut to what is left, so a
server that drips one byte per timeout holds it no longer; https verifies the server certificate against ca_der and the
URL's host name (ssl.CERT_REQUIRED).
Non-guarantees: no redirects, no chunked encoding, no keep-alive, no
proxy; integrity comes from the signed manifest, not from the transport.
"""
import socket
import time

from micropython import const

_HEAD_MAX = const(2048)
DEADLINE_MS = const(300000)  # 5 min: a 1.5 MB image at 10 KB/s, with room


class Deadline(OSError):
    reason = "deadline"


def split_url(url):
    """'http(s)://host[:port]/path/' -> (tls, host, port, path)."""
    if url.startswith("https://"):
        tls, rest, port = True, url[8:], 443
    elif url.startswith("http://"):
        tls, rest, port = False, url[7:], 80
    else:
        raise ValueError("update URL must start with http:// or https://")
    i = rest.find("/")
    host, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    if ":" in host:
        host, p = host.split(":", 1)
        port = int(p)
    if not host:
        raise ValueError("update URL has no host")
    return tls, host, port, path


class Response:
    def __init__(self, sock, left, src, raw):
        self._s = sock
        self._left = left
        self.length = left  # the body's size (Content-Length)
        self._src = src
        self._raw = raw

    def readinto(self, buf):
        if self._left <= 0:
            return 0
        n = self._src._call(self._raw, self._s.readinto, memoryview(buf)[:min(len(buf), self._left)])
        if not n:
            raise OSError("connection closed %d bytes early" % self._left)
        self._left -= n
        return n

    def close(self):
        self._s.close()


class HttpSource:
    def __init__(self, base_url, ca_der=None, timeout_ms=10000, deadline_ms=DEADLINE_MS,
                 net=None, clock=None):
        """net: the socket module (injected in tests); clock: ms ticks
        (default time.ticks_ms)."""
        self.tls, self.host, self.port, self.path = split_url(base_url)
        if not self.path.endswith("/"):
            self.path += "/"
        self.ca = ca_der
        self.timeout_ms = timeout_ms
        self.deadline_ms = deadline_ms
        self._net = net or socket
        self._clock = clock or time.ticks_ms
        self._t0 = None

    def _arm(self, raw=None):
        """Set raw's timeout for the next call: the per-call timeout, cut to
        what is left of the download's deadline; Deadline once it passed."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        left = self.deadline_ms - time.ticks_diff(now, self._t0)
        if left <= 0:
            raise Deadline("download over its %d s deadline" % (self.deadline_ms // 1000))
        if raw is not None:
            raw.settimeout(min(self.timeout_ms, left) / 1000)

    def _call(self, raw, fn, *args):
        """fn(*args) within the deadline; a timeout that the deadline cut
        short is the Deadline."""
        self._arm(raw)
        try:
            return fn(*args)
        except OSError:
            self._arm()
            raise

    def _connect(self):
        net = self._net
        if self._t0 is None:
            self._t0 = self._clock()
        ai = net.getaddrinfo(self.host, self.port, 0, net.SOCK_STREAM)[0]
        raw = s = net.socket(ai[0], net.SOCK_STREAM)
        try:
            self._call(raw, s.connect, ai[-1])
            if self.tls:
                import ssl
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cadata=self.ca)
                s = self._call(raw, lambda t=raw: ctx.wrap_socket(t, server_hostname=self.host))
        except BaseException:
            s.close()
            raise
        if hasattr(s, "recv_into"):  # CPython (host tests): its ssl socket keeps the timeout
            raw = s
        if not hasattr(s, "readinto"):  # CPython (host tests): recv_into/sendall
            s = _Stream(s)
        return s, raw

    def fetch(self, name, cap):
        s, raw = self._connect()
        try:
            self._call(raw, s.write, ("GET %s%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
                                      "vitalnode\r\n\r\n" % (self.path, name, self.host)).encode())
            status, length = _head(s, lambda b: self._call(raw, s.readinto, b))
            if status != 200:
                raise OSError("HTTP %d for %s" % (status, name))
            if length < 0:
                raise OSError("%s: no Content-Length" % name)
            if length > cap:
                raise OSError("%s: %d bytes, over the %d-byte cap" % (name, length, cap))
        except BaseException:
            s.close()
            raise
        return Response(s, length, self, raw)


class _Stream:
    def __init__(self, s):
        self._s = s

    def readinto(self, buf):
        return self._s.recv_into(buf)

    def write(self, b):
        self._s.sendall(b)

    def close(self):
        self._s.close()


def _head(s, read):
    """Read the status line and headers byte by byte (never past them)
    with read(buf) (within the deadline)."""
    head = bytearray()
    one = bytearray(1)
    while not head.endswith(b"\r\n\r\n"):
        if len(head) >= _HEAD_MAX:
            raise OSError("response headers over %d bytes" % _HEAD_MAX)
        if not read(one):
            raise OSError("connection closed in the headers")
        head.extend(one)
    lines = bytes(head).split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise OSError("not an HTTP response")
    length = -1
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            v = line[15:].strip()
            if not v.isdigit():
                raise OSError("bad Content-Length")
            length = int(v)
    return int(parts[1]), length
