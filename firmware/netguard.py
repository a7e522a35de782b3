"""The socket and TLS layer under umqtt.simple: no call can block without a
timeout, on the chip (MicroPython socket + ssl) and on a host (CPython).

    from firmware import netguard
    simple = netguard.install(timeout_ms=5000)   # the umqtt.simple module
    # its socket.socket() / ussl.wrap_socket() now come from here

umqtt.simple 1.3.4 (pinned, from PyPI) makes its own socket in connect()
and, in wait_msg(), puts it back into blocking mode: a lost PUBACK would
block the node forever. Here every socket it gets is a Guarded one:
setblocking(True) means "block for at most timeout_ms", never unbounded,
and a read that times out raises OSError(ETIMEDOUT). Its `ussl` (gone from
current MicroPython) is this module's Tls: CA verification
(CERT_REQUIRED) and the server's host name, with the CA from the config.
`net` is what makes sockets: the real `socket` and `tls` modules (`ssl`
on CPython), or a simulated network (tools/shims/simnet.py) that adds
the chip's DNS, round-trip and handshake times on the virtual clock.

The handshake offers RSA key transport only (CIPHERS): on the ESP32 the
public-key work of a TLS 1.2 handshake runs in one C call that lets no
scheduled callback run, so the sampler's timer waits it out, and the
sensor's FIFO holds 160 ms. ECDHE with ECDSA (P-256 in software: about
0.8 s for the key exchange and as much per signature check) would lose
samples at every connect; two RSA public operations (the CA's signature,
the premaster secret: ~20-40 ms with the hardware MPI) do not. The price
is forward secrecy: docs/timing.md and the README's threat model.
Non-guarantee: DNS (getaddrinfo) blocks callbacks for as long as the
resolver takes (seconds when it does not answer): give the node the
broker's address (config broker.addr) so it never resolves.
"""
import errno
import sys

_ETIMEDOUT = errno.ETIMEDOUT  # 116 on the chip (newlib), 110 on Linux
# TLS 1.2 suites the node offers: RSA key transport, AES-GCM (mbedTLS names
# on MicroPython, OpenSSL names on CPython)
CIPHERS = ("TLS-RSA-WITH-AES-128-GCM-SHA256", "TLS-RSA-WITH-AES-256-GCM-SHA384")
CIPHERS_OPENSSL = "AES128-GCM-SHA256:AES256-GCM-SHA384"
_FLUSH_AT = 512  # bytes gathered before a write goes out without waiting for a read
_MP = sys.implementation.name == "micropython"


def pem_to_der(pem):
    import binascii
    body = "".join(line.strip() for line in pem.strip().splitlines()
                   if line.strip() and not line.startswith("-----"))
    return binascii.a2b_base64(body.encode())


class Guarded:
    """A socket with the stream API umqtt.simple uses (read/write) and a
    timeout that setblocking(True) cannot remove.

    Writes are gathered until the next read (or close, or _FLUSH_AT
    bytes): umqtt.simple sends one MQTT packet as up to five small writes,
    and each would be its own TLS record and TCP segment; with Nagle's
    algorithm (on by default, lwIP too) the last one waits for the
    delayed ACK of the others, ~40 ms per publish. One write per packet
    also spares the chip four TLS record encryptions. A flush always
    writes with the timeout, also when the read that triggers it is
    non-blocking (check_msg): a gathered packet is sent whole or the
    connection fails, never cut."""

    def __init__(self, sock, timeout_s, ctl=None):
        self._s = sock
        self._ctl = ctl or sock  # where timeouts apply (MicroPython TLS: the raw socket)
        self._t = timeout_s
        self._ctl.settimeout(timeout_s)
        self._out = b""
        self._blocking = True

    def setblocking(self, flag):
        self._blocking = flag
        self._ctl.settimeout(self._t if flag else 0)

    def connect(self, addr):
        self._s.connect(addr)

    def read(self, n):
        if self._out:
            self._flush()
        if _MP:
            try:
                return self._s.read(n)
            except OSError as e:
                if e.args and e.args[0] == 11:  # EAGAIN: nothing yet (non-blocking)
                    return None
                raise
        out = b""  # CPython: recv until n bytes, EOF or timeout
        while len(out) < n:
            try:
                b = self._s.recv(n - len(out))
            except TimeoutError:
                raise OSError(_ETIMEDOUT, "timed out")
            except OSError as e:
                # non-blocking with nothing there (plain or TLS socket)
                if not (isinstance(e, BlockingIOError) or type(e).__name__ == "SSLWantReadError"):
                    raise
                if not out:
                    return None
                self._ctl.settimeout(self._t)  # the rest of a message comes soon
                continue
            if not b:
                break
            out += b
        return out

    def write(self, buf, n=None):
        data = bytes(buf if n is None else memoryview(buf)[:n])
        self._out += data
        if len(self._out) >= _FLUSH_AT:
            self._flush()
        return len(data)

    def _flush(self):
        data, self._out = self._out, b""
        if not self._blocking:
            self._ctl.settimeout(self._t)
        try:
            if _MP:
                if self._s.write(data) != len(data):
                    raise OSError(_ETIMEDOUT, "short write")
                return
            self._s.sendall(data)
        except TimeoutError:
            raise OSError(_ETIMEDOUT, "timed out")
        finally:
            if not self._blocking:
                self._ctl.settimeout(0)

    def close(self):
        try:
            if self._out:
                self._flush()  # a DISCONNECT umqtt wrote just before
        except OSError:
            pass
        try:
            self._s.close()
        except OSError:
            pass


class Tls:
    """`ussl` for umqtt.simple: wrap_socket(sock, cadata=DER, server_hostname=h).

    One SSLContext per CA, made once (context(), at the uplink's start)
    and kept: on MicroPython it is one ~1.7 KB object (mbedtls' config,
    DRBG and the parsed CA), and a heap that has run for hours may no
    longer have a contiguous block that size when a reconnect needs it."""

    def __init__(self, net_ssl):
        self._ssl = net_ssl
        self._ctx = None
        self._ca = None

    def context(self, cadata):
        if self._ctx is None or self._ca is not cadata:
            ssl = self._ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_REQUIRED
            if _MP:  # the `tls` module: positional CA, a list of suite names
                ctx.load_verify_locations(cadata)
                ctx.set_ciphers(list(CIPHERS))
            else:
                ctx.load_verify_locations(cadata=cadata)
                ctx.set_ciphers(CIPHERS_OPENSSL)
            self._ctx, self._ca = ctx, cadata
        return self._ctx

    def wrap_socket(self, sock, cadata=None, server_hostname=None, **_):
        if not cadata or not server_hostname:
            raise OSError(22, "TLS needs the CA and the server host name")
        ctx = self.context(cadata)
        raw = sock._s
        s = ctx.wrap_socket(raw, server_hostname=server_hostname)
        return Guarded(s, sock._t, raw if _MP else s)


class _Net:
    """`usocket` for umqtt.simple: sockets come out Guarded."""

    def __init__(self, net_socket, timeout_s):
        self._socket = net_socket
        self.timeout_s = timeout_s

    def socket(self, *a):
        return Guarded(self._socket.socket(*a), self.timeout_s)

    def getaddrinfo(self, host, port, *a):
        return self._socket.getaddrinfo(host, port, *a)


def install(timeout_ms, net_socket=None, net_ssl=None):
    """umqtt.simple, with its `socket` and `ussl` pointed at guarded ones."""
    if net_socket is None:
        import socket as net_socket
    if net_ssl is None:
        if _MP:
            import tls as net_ssl  # the C module: ssl's wrapper has no set_ciphers
        else:
            import ssl as net_ssl
    net = _Net(net_socket, timeout_ms / 1000)
    # the names umqtt.simple imports; 1.27 still has ustruct/ubinascii,
    # CPython does not; usocket/ussl are ours
    import binascii
    import struct
    for name, mod in (("ustruct", struct), ("ubinascii", binascii)):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = mod
    # objects standing in for modules, and umqtt's module-level socket
    # replaced, on purpose: the type checker's module types do not fit
    sys.modules["usocket"] = net  # pyright: ignore[reportArgumentType]
    tls = sys.modules.get("ussl")
    if not isinstance(tls, Tls) or tls._ssl is not net_ssl:
        sys.modules["ussl"] = Tls(net_ssl)  # pyright: ignore[reportArgumentType] - else keep it: its SSLContext is made already
    from umqtt import simple
    simple.socket = net  # pyright: ignore[reportAttributeAccessIssue]
    return simple


def tls_context(cadata):
    """Make (once) the SSLContext that install()'s `ussl` will use for this
    CA: call it early, while the heap still has a large free block."""
    return sys.modules["ussl"].context(cadata)
