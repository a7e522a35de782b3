"""`socket` inside the emulated device. The wasm port has no socket module,
so TCP goes through the Node host (emuhost.tcp_exchange, a real connection
made by a helper process on the host's network).

    ai = socket.getaddrinfo("127.0.0.1", 8070, 0, socket.SOCK_STREAM)[0]
    s = socket.socket(ai[0], socket.SOCK_STREAM)
    s.settimeout(10); s.connect(ai[-1]); s.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    n = s.readinto(buf)

Guarantee: the bytes written reach the server and the bytes it sends come
back unchanged; a refused or silent server is an OSError (ECONNREFUSED,
ETIMEDOUT), as on the ESP32.
Non-guarantees: one request, then one reply. Everything written before
the first read goes out together, and the reply is read until the server
closes. That is HTTP/1.0, all the node's update client speaks. Connection
errors show at the first read, not at connect(). There is no TLS and no
interleaved protocol such as MQTT: the MicroPython unix port, which has
real sockets, runs those tests.
"""
import binascii

import emuhost

AF_INET = 2
SOCK_STREAM = 1
IPPROTO_TCP = 6
_REPLY_MAX = 1 << 20  # bytes of one reply (a bundle file is at most 256 KiB)
_ENOTCONN = 107


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (host, port))]


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        self._addr = None
        self._timeout_ms = 0  # 0: the host's default
        self._out = bytearray()
        self._in = None
        self._pos = 0

    def settimeout(self, seconds):
        self._timeout_ms = 0 if seconds is None else max(1, int(seconds * 1000))

    def connect(self, addr):
        self._addr = addr

    def write(self, data):
        if self._in is not None:
            raise OSError(_ENOTCONN)  # the exchange is over
        self._out.extend(data)
        return len(data)

    send = write
    sendall = write

    def _exchange(self):
        if self._addr is None:
            raise OSError(_ENOTCONN)
        host, port = self._addr
        reply = emuhost.tcp_exchange(host, port, binascii.hexlify(self._out).decode(),
                                     self._timeout_ms, _REPLY_MAX)
        if reply.startswith("E"):
            raise OSError(int(reply[1:]))
        self._in = binascii.unhexlify(reply)
        self._out = None

    def readinto(self, buf, nbytes=-1):
        if self._in is None:
            self._exchange()
        n = len(buf) if nbytes < 0 else min(nbytes, len(buf))
        n = min(n, len(self._in) - self._pos)
        buf[:n] = self._in[self._pos:self._pos + n]
        self._pos += n
        return n

    def read(self, n=-1):
        if self._in is None:
            self._exchange()
        end = len(self._in) if n < 0 else min(len(self._in), self._pos + n)
        out = self._in[self._pos:end]
        self._pos = end
        return out

    recv = read

    def close(self):
        self._in = b""
        self._pos = 0
