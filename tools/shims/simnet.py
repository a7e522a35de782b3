"""The network as a simulated node sees it: real sockets (to a real broker on
loopback) plus the time the ESP32 spends in each blocking network call, on
the virtual clock, with the port's rules for when scheduled callbacks (the
sampler's timer) run meanwhile. docs/timing.md has the sources.

    net = simnet.SimNet(tls_keys={"ca": "rsa3072", "server": "rsa2048"})
    sys.modules["socket"], sys.modules["tls"] = net, net.tls   # the node's view
    net.blackhole = True     # a dead broker: connects and reads hang until timeout

What each call costs, and whether callbacks run during it:
- getaddrinfo of a host name: lwip_getaddrinfo, one C call that runs no
  callbacks (ports/esp32/modsocket.c _getaddrinfo_inner releases the GIL
  but never calls the pending handler): timing.P.dns_us. A numeric
  address costs nothing (lwIP parses it). connect() resolves its address
  the same way.
- connect(), and a blocking read that waits for the peer's answer: a
  network round trip (timing.P.rtt_us), waited in SOCKET_POLL_US = 100 ms
  select() slices with the pending handler between them (modsocket.c
  socket_connect / _socket_read_data: check_for_exceptions ->
  mp_handle_pending). A black hole waits the socket's whole timeout so,
  then OSError(ETIMEDOUT).
- the TLS handshake (SSLContext.wrap_socket, extmod/modtls_mbedtls.c):
  two round trips on a blocking socket (callbacks as above), and the
  client's public-key work in one stretch with no callbacks at all: the
  server's whole flight (Certificate, ServerKeyExchange, ServerHelloDone)
  arrives at once, and mbedtls_ssl_handshake() verifies the chain, checks
  the key exchange's signature and computes the ClientKeyExchange without
  returning. Its length comes from the suite actually negotiated (cipher())
  and the site's key types (tls_keys): ECDHE costs a key pair and a shared
  secret, an ECDSA signature a verify, an RSA key a public operation.
- writes: the radio's buffers take a small frame at once (no time).
- the real peers' own time: for AWAIT_US of virtual time after the node
  writes on a socket, until it closes it, the virtual time since the write
  does not run ahead of the wall time since it (vclock.Clock.hold): the
  broker and the gateway are real processes, and their answers (PUBACK,
  the gateway's acknowledgement) take real time. Without it a node polling
  at up to ~100x real time would see a 30 ms answer take 3 s.
Non-guarantees: an answer slower than AWAIT_US of wall time arrives later
in virtual time than it took; the peers run on loopback on this host (a
deployed gateway, its database and the network may answer later); the
wireless round trip is not added to answers read without blocking; a
read that finds data already there costs nothing, and TCP retransmission
inside an established connection is not modelled (only black holes).
`stalls_ms` adds up the virtual time spent waiting on the network,
`crypto_us_max` the longest handshake computation, `tx_bytes`/`rx_bytes`
what the node wrote and read (for the energy model's airtime).
"""
import errno

import timing
import vclock

POLL_US = 100000  # ports/esp32/modsocket.c SOCKET_POLL_US
AWAIT_US = 250000  # after a write, the clock keeps to wall time this long (above)


def _numeric(host):
    p = host.split(".")
    return len(p) == 4 and all(x.isdigit() and int(x) < 256 for x in p)


def handshake_us(cipher, keys, p=None):
    """The client's public-key computation in a TLS 1.2 handshake of suite
    `cipher` (mbedTLS "TLS-ECDHE-ECDSA-WITH-..." or OpenSSL
    "ECDHE-ECDSA-..." names) with a site whose CA and server keys are
    keys["ca"] / keys["server"] ("rsa2048", "rsa3072", "ec256")."""
    p = p or timing.P
    c = cipher.upper().replace("_", "-")

    def verify(kind):  # one signature checked with a key of this kind
        if kind.startswith("rsa"):
            bits = int(kind[3:])
            return p.rsa2048_public_us * bits * bits // (2048 * 2048)
        return p.ecdsa_verify_us
    us = verify(keys["ca"])  # the CA's signature on the server certificate
    if "ECDHE" in c:
        us += p.ecdhe_us + verify(keys["server"])  # key pair + secret; the signed parameters
    elif "DHE" in c:
        raise ValueError("DHE suites are not modelled: %s" % cipher)
    else:  # RSA key transport: the premaster secret encrypted with the server's key
        us += verify(keys["server"])
    return us


class _Sock:
    def __init__(self, net, s, ctl=None):
        self._net = net
        self._s = s
        self._t = None
        self._ctl = ctl  # a TLS socket's timeout is its raw socket's (MicroPython)
        self._asked = False  # sent something the peer will answer

    def settimeout(self, t):
        self._t = t
        self._s.settimeout(t)

    def setblocking(self, flag):
        self._t = None if flag else 0
        self._s.setblocking(flag)

    def _tmo(self):
        return (self._ctl or self)._t

    def _timeout_us(self):
        t = self._tmo()
        return int((t if t else 5) * 1000000)

    def connect(self, addr):
        net = self._net
        if isinstance(addr, tuple) and isinstance(addr[0], str):
            net.resolve(addr[0])
        if net.blackhole:
            net.wait(self._timeout_us())
            raise OSError(errno.ETIMEDOUT)
        net.wait(timing.P.rtt_us)
        self._s.connect(addr)

    def _answer(self):
        """Before a blocking read: the round trip the answer takes."""
        if self._tmo() == 0:
            return
        net = self._net
        if net.blackhole:
            net.wait(self._timeout_us())
            raise OSError(errno.ETIMEDOUT)
        if self._asked:
            self._asked = False
            net.wait(timing.P.rtt_us)

    def _ask(self):
        """Sent something: the peer will answer, in its own (real) time."""
        self._asked = True
        self._net.owed(self)

    def write(self, buf, *a):
        self._ask()
        n = self._s.write(buf, *a)
        self._net.tx_bytes += len(buf) if n is None else n
        return n

    def send(self, buf):
        self._ask()
        n = self._s.send(buf)
        self._net.tx_bytes += n
        return n

    def sendall(self, buf):
        self._ask()
        r = self._s.sendall(buf)
        self._net.tx_bytes += len(buf)
        return r

    def read(self, *a):
        self._answer()
        d = self._s.read(*a)
        if d:
            self._net.rx_bytes += len(d)
        return d

    def readinto(self, *a):
        self._answer()
        n = self._s.readinto(*a)
        if n:
            self._net.rx_bytes += n
        return n

    def recv(self, *a):
        self._answer()
        d = self._s.recv(*a)
        if d:
            self._net.rx_bytes += len(d)
        return d

    def close(self):
        self._net.settled(self)
        return self._s.close()

    def __getattr__(self, name):
        return getattr(self._s, name)


class _Ctx:
    """An SSLContext whose wrap_socket costs what the handshake costs."""

    def __init__(self, net, real):
        self._net = net
        self._c = real

    def __setattr__(self, name, value):
        if name in ("_net", "_c"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._c, name, value)

    def __getattr__(self, name):
        return getattr(self._c, name)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    server_hostname=None):
        net = self._net
        raw = sock._s if isinstance(sock, _Sock) else sock
        if net.blackhole:
            net.wait(sock._timeout_us() if isinstance(sock, _Sock) else 5000000)
            raise OSError(errno.ETIMEDOUT)
        s = self._c.wrap_socket(raw, server_hostname=server_hostname)
        c = s.cipher()
        name = c[0] if isinstance(c, tuple) else c
        net.handshake(name)
        return _Sock(net, s, sock if isinstance(sock, _Sock) else None)


class _Tls:
    """The `tls` module (MicroPython) or `ssl` (CPython) of the node."""

    def __init__(self, net, real):
        self._net = net
        self._real = real
        for name in ("PROTOCOL_TLS_CLIENT", "CERT_REQUIRED", "CERT_NONE"):
            setattr(self, name, getattr(real, name))

    def SSLContext(self, proto):
        return _Ctx(self._net, self._real.SSLContext(proto))


class SimNet:
    def __init__(self, tls_keys=None, real_socket=None, real_tls=None):
        if real_socket is None:
            import socket as real_socket
        if real_tls is None:
            try:
                import tls as real_tls  # MicroPython: the C module under ssl
            except ImportError:
                import ssl as real_tls
        self._socket = real_socket
        self.tls = _Tls(self, real_tls)
        self.ssl = self.tls  # CPython callers' name for it
        self.keys = tls_keys or {"ca": "ec256", "server": "ec256"}
        self.blackhole = False
        self.stalls_ms = 0
        self.dns_lookups = 0
        self.handshakes = 0
        self.crypto_us_max = 0
        self.ciphers = {}
        # bytes the node wrote and read on its sockets (TLS plaintext: record
        # and handshake overhead, TCP/IP headers and retransmissions are not
        # counted); tools/power turns them into airtime
        self.tx_bytes = 0
        self.rx_bytes = 0
        self._owing = {}  # id(socket): when its peer's answer is no longer awaited
        for name in ("AF_INET", "SOCK_STREAM", "SOL_SOCKET", "SO_REUSEADDR", "IPPROTO_TCP"):
            if hasattr(real_socket, name):
                setattr(self, name, getattr(real_socket, name))

    # -- time ------------------------------------------------------------
    def wait(self, us):
        """Waiting on the network: callbacks run every POLL_US."""
        self.stalls_ms += us // 1000
        vclock.clock.block(us, POLL_US)

    def owed(self, sock):
        """The node wrote on `sock`: its real peer's answer takes real time."""
        clk = vclock.clock
        until = clk.now_us + AWAIT_US
        self._prune(clk.now_us)
        self._owing[id(sock)] = until  # (an id: a socket a reset abandoned is still freed)
        clk.hold(until)

    def settled(self, sock):
        """`sock` is closed: nothing more comes on it."""
        if self._owing.pop(id(sock), None) is not None:
            clk = vclock.clock
            clk.hold_until_us = self._prune(clk.now_us)

    def _prune(self, now):
        """Drop holds that ended (or belong to another clock); the latest end."""
        h = 0
        for k in list(self._owing):
            t = self._owing[k]
            if t <= now or t > now + AWAIT_US:
                del self._owing[k]
            elif t > h:
                h = t
        return h

    def compute(self, us, what):
        """One C call that runs no callbacks (DNS, handshake crypto)."""
        vclock.clock.block(us, what=what)

    def resolve(self, host):
        if not _numeric(host):
            self.dns_lookups += 1
            self.compute(timing.P.dns_us, "dns")

    def handshake(self, cipher):
        self.handshakes += 1
        self.ciphers[cipher] = self.ciphers.get(cipher, 0) + 1
        us = handshake_us(cipher, self.keys)
        self.crypto_us_max = max(self.crypto_us_max, us)
        self.wait(timing.P.rtt_us)  # ClientHello -> the server's flight
        self.compute(us, "tls-handshake-crypto")
        self.wait(timing.P.rtt_us)  # ChangeCipherSpec/Finished both ways

    # -- the `socket` module ---------------------------------------------
    def socket(self, *a):
        return _Sock(self, self._socket.socket(*a))

    def getaddrinfo(self, host, port, *a):
        self.resolve(host)
        return self._socket.getaddrinfo(host, port, *a)
