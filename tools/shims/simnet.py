"""The network as a simulated node sees it, on the virtual clock: real
sockets (to a real broker on loopback) plus the time a real network takes
and the ways it fails, which loopback never shows.

    net = simnet.SimNet(handshake_ms=3000)
    up = Uplink(..., net_socket=net, net_ssl=net.ssl)
    net.blackhole = True     # a dead broker: connects hang until timeout

- every TLS handshake costs `handshake_ms` of virtual time (a slow link);
- while `blackhole`, connect() costs the socket's whole timeout, then
  OSError(ETIMEDOUT) - what a node sees when packets vanish.
Virtual time passes with vclock.sleep_us, so timers (the sampler's pump,
the watchdog) fire during it exactly as they would during a blocking call
on the chip. `stalls_ms` adds up the virtual time spent blocked.
"""
import vclock

_ETIMEDOUT = 110


class _Sock:
    def __init__(self, net, s):
        self._net = net
        self._s = s
        self._t = None

    def settimeout(self, t):
        self._t = t
        self._s.settimeout(t)

    def connect(self, addr):
        if self._net.blackhole:
            self._net.stall(int((self._t or 5) * 1000))
            raise OSError(_ETIMEDOUT)
        self._s.connect(addr)

    def __getattr__(self, name):
        return getattr(self._s, name)


class _Ctx:
    def __init__(self, net, real):
        self._net = net
        self._c = real

    def __setattr__(self, name, value):
        if name in ("_net", "_c"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._c, name, value)

    def load_verify_locations(self, **kw):
        self._c.load_verify_locations(**kw)

    def wrap_socket(self, sock, server_hostname=None):
        self._net.stall(self._net.handshake_ms)
        return self._c.wrap_socket(sock._s, server_hostname=server_hostname)


class _Ssl:
    def __init__(self, net, real):
        self._net = net
        self.PROTOCOL_TLS_CLIENT = real.PROTOCOL_TLS_CLIENT
        self.CERT_REQUIRED = real.CERT_REQUIRED
        self._real = real

    def SSLContext(self, proto):
        return _Ctx(self._net, self._real.SSLContext(proto))


class SimNet:
    def __init__(self, handshake_ms=3000):
        import socket
        import ssl
        self._socket = socket
        self.ssl = _Ssl(self, ssl)
        self.handshake_ms = handshake_ms
        self.blackhole = False
        self.stalls_ms = 0

    def stall(self, ms):
        self.stalls_ms += ms
        vclock.clock.sleep_us(ms * 1000)

    def socket(self, *a):
        return _Sock(self, self._socket.socket(*a))

    def getaddrinfo(self, host, port, *a):
        return self._socket.getaddrinfo(host, port, *a)
