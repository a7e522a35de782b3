"""`network` for simulated nodes: WLAN station with scripted radio world
(simboard.Wifi: access points, connect delay, failures, drops)."""
import simboard

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204


class _Radio:
    """State of one interface of the radio (shared by every WLAN object)."""

    def __init__(self, interface_id):
        self.iface = interface_id
        self.active = False
        self.status = STAT_IDLE
        self.ssid = None
        self.pending = None
        self.hostname = "esp32"

    def _dropped(self):
        if self.status == STAT_GOT_IP:
            self.status = STAT_BEACON_TIMEOUT

    def _power_off(self):
        if self.pending is not None:
            simboard.board.clock.cancel(self.pending)
            self.pending = None
        self.status = STAT_IDLE
        self.active = False


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, interface_id=STA_IF):
        b = simboard.board
        for r in b.wlans:
            if r.iface == interface_id:
                self._r = r
                return
        self._r = _Radio(interface_id)
        b.wlans.append(self._r)

    def active(self, is_active=None):
        if is_active is None:
            return self._r.active
        self._r.active = bool(is_active)
        if not self._r.active:
            self.disconnect()

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._r.active:
            raise OSError("Wifi Not Started")
        b = simboard.board
        self.disconnect()
        self._r.status = STAT_CONNECTING
        w = b.wifi
        if w.down or ssid not in w.aps:
            result = STAT_NO_AP_FOUND
        elif w.aps[ssid][0] != key:
            result = STAT_WRONG_PASSWORD
        elif w.fail_left:
            w.fail_left -= 1
            result = w.fail_status
        else:
            result = STAT_GOT_IP
        self._r.ssid = ssid

        def done():
            self._r.pending = None
            self._r.status = result
        self._r.pending = b.clock.call_later_us(w.connect_ms * 1000, done)

    def disconnect(self):
        if self._r.pending is not None:
            simboard.board.clock.cancel(self._r.pending)
            self._r.pending = None
        self._r.status = STAT_IDLE

    def isconnected(self):
        return self._r.status == STAT_GOT_IP

    def status(self, param=None):
        if param is None:
            return self._r.status
        if param == "rssi":
            if self._r.status != STAT_GOT_IP:
                raise OSError("STA is not connected")
            return simboard.board.wifi.aps[self._r.ssid][1]
        raise ValueError("unknown status param")

    def ifconfig(self, cfg=None):
        if cfg is not None:
            return
        if self._r.status != STAT_GOT_IP:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return ("192.168.4.%d" % (2 + simboard.board.uid[-1] % 250), "255.255.255.0",
                "192.168.4.1", "192.168.4.1")

    def config(self, *args, **kw):
        if args:
            name = args[0]
            if name == "mac":
                return simboard.board.uid
            if name in ("ssid", "essid"):
                return self._r.ssid or ""
            if name in ("hostname", "dhcp_hostname"):
                return self._r.hostname
            raise ValueError("unknown config param")
        if "hostname" in kw or "dhcp_hostname" in kw:
            self._r.hostname = kw.get("hostname", kw.get("dhcp_hostname"))

    def scan(self):
        w = simboard.board.wifi
        if not self._r.active or w.down:
            return []
        return [(s.encode(), b"\x00" * 6, 6, v[1], 3, False) for s, v in w.aps.items()]


def hostname(name=None):
    return "esp32" if name is None else None
