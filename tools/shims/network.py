"""`network` for simulated nodes: the ESP32 port's WLAN station
(ports/esp32/network_wlan.c; docs/shims.md) against a scripted radio world
(simboard.Wifi: access points, connect delay, failures, drops).

As on the chip:
- connect() starts an attempt and returns; the result arrives after the
  world's connect delay. connect() while an attempt is under way raises
  OSError("Wifi Internal Error") (IDF's ESP_ERR_WIFI_CONN; its errno is
  that string). While connected, it re-associates.
- After connect(), a lost or failed connection is retried by the driver
  (MicroPython's event handler calls esp_wifi_connect() again at once),
  forever unless config(reconnects=n) limits it; the count resets only at
  connect(). disconnect() stops that.
- status(): STAT_GOT_IP when connected; else the last failure if it was
  NO_AP_FOUND or WRONG_PASSWORD, even while retrying; else STAT_CONNECTING
  while retrying; STAT_IDLE after disconnect() or before any attempt.
- isconnected() is True from GOT_IP until the next disconnection.
"""
import powerstate
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
_ASSOC_LEAVE = 8  # WIFI_REASON_ASSOC_LEAVE: after disconnect()
_CONNECTION_FAIL = 205
# WLAN.config(pm=...): ESP-IDF wifi_ps_type_t (ports/esp32/network_wlan.c);
# the port never sets it, so a station runs ESP-IDF's default, MIN_MODEM
PM_NONE, PM_PERFORMANCE, PM_POWERSAVE = 0, 1, 2


class _Radio:
    """State of one interface of the radio (shared by every WLAN object)."""

    def __init__(self, interface_id):
        self.iface = interface_id
        self.active = False
        self.connected = False
        self.requested = False  # wifi_sta_connect_requested
        self.reason = 0  # the last disconnection reason (0: none)
        self.ssid = None
        self.key = None
        self.pending = None  # the attempt under way (a clock event)
        self.reconnects = 0
        self.reconnect_limit = 0  # config(reconnects=n) + 1; 0 = forever
        self.attempts = 0
        self.hostname = "esp32"
        self.pm = PM_PERFORMANCE

    def _meter(self):
        """Tell the power meter the station's radio state (powerstate)."""
        if self.iface != STA_IF:
            return  # the access-point interface is not modelled
        if not self.active:
            st = powerstate.R_OFF
        elif self.connected:
            if self.pm == PM_NONE:
                st = powerstate.R_CONNECTED_NONE
            elif self.pm == PM_POWERSAVE:
                st = powerstate.R_CONNECTED_MAX
            else:
                st = powerstate.R_CONNECTED_MIN
        elif self.pending is not None or self.requested:
            st = powerstate.R_CONNECTING
        else:
            st = powerstate.R_ON
        simboard.board.power.radio(st)

    def _attempt(self):
        """esp_wifi_connect(): the result after the world's delay."""
        b = simboard.board
        w = b.wifi
        self.attempts += 1
        if w.down or self.ssid not in w.aps:
            result = STAT_NO_AP_FOUND
        elif w.aps[self.ssid][0] != self.key:
            result = STAT_WRONG_PASSWORD
        elif w.fail_left:
            w.fail_left -= 1
            result = w.fail_status
        else:
            result = STAT_GOT_IP
        self.pending = b.clock.call_later_us(w.connect_ms * 1000, lambda: self._done(result))
        self._meter()

    def _done(self, result):
        self.pending = None
        if result == STAT_GOT_IP:
            self.connected = True
            self.reason = 0
            self._meter()
            return
        self._disconnected(result)

    def _disconnected(self, reason):
        """WIFI_EVENT_STA_DISCONNECTED: retry at once while requested."""
        self.connected = False
        self.reason = reason
        if self.requested and self.active:
            self.reconnects += 1
            if self.reconnect_limit and self.reconnects >= self.reconnect_limit:
                self.requested = False
                self._meter()
                return
            self._attempt()
        else:
            self._meter()

    def _dropped(self):
        if self.connected:
            self._disconnected(STAT_BEACON_TIMEOUT)

    def _cancel(self):
        if self.pending is not None:
            simboard.board.clock.cancel(self.pending)
            self.pending = None
        self._meter()

    def _power_off(self):
        self._cancel()
        self.connected = False
        self.requested = False
        self.active = False
        self._meter()


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF
    PM_NONE = PM_NONE
    PM_PERFORMANCE = PM_PERFORMANCE
    PM_POWERSAVE = PM_POWERSAVE

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
        if not is_active:
            self._r._cancel()
            self._r.connected = False
        self._r.active = bool(is_active)
        self._r._meter()

    def connect(self, ssid=None, key=None, *, bssid=None):
        r = self._r
        if not r.active:
            raise OSError("Wifi Not Started")
        if r.pending is not None:
            raise OSError("Wifi Internal Error")  # an attempt is under way
        if ssid is not None:
            r.ssid = ssid
            r.key = key
        r.reconnects = 0
        if r.connected:  # re-associate
            r.connected = False
        r.requested = True
        r._attempt()

    def disconnect(self):
        r = self._r
        if not r.active:
            raise OSError("Wifi Not Started")
        r.requested = False
        r._cancel()
        r.connected = False
        r.reason = _ASSOC_LEAVE
        r._meter()

    def isconnected(self):
        return self._r.connected

    def status(self, param=None):
        r = self._r
        if param is None:
            if r.connected:
                return STAT_GOT_IP
            if r.reason in (STAT_NO_AP_FOUND, 210, 211, 212):
                return r.reason
            if r.reason in (STAT_WRONG_PASSWORD, _CONNECTION_FAIL):
                return STAT_WRONG_PASSWORD
            if r.reason == _ASSOC_LEAVE:
                return STAT_IDLE
            if r.requested:
                return STAT_CONNECTING
            if not r.reason:
                return STAT_IDLE
            return r.reason
        if param == "rssi":
            if not r.connected:
                raise OSError("STA is not connected")
            return simboard.board.wifi.aps[r.ssid][1]
        raise ValueError("unknown status param")

    def ifconfig(self, cfg=None):
        if cfg is not None:
            return
        if not self._r.connected:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return ("192.168.4.%d" % (2 + simboard.board.uid[-1] % 250), "255.255.255.0",
                "192.168.4.1", "192.168.4.1")

    def config(self, *args, **kw):
        r = self._r
        if args:
            name = args[0]
            if name == "mac":
                return simboard.board.uid
            if name in ("ssid", "essid"):
                return r.ssid or ""
            if name in ("hostname", "dhcp_hostname"):
                return r.hostname
            if name == "reconnects":
                return r.reconnect_limit - 1
            if name == "pm":
                return r.pm
            raise ValueError("unknown config param")
        if "hostname" in kw or "dhcp_hostname" in kw:
            r.hostname = kw.get("hostname", kw.get("dhcp_hostname"))
        if "pm" in kw:
            if kw["pm"] not in (PM_NONE, PM_PERFORMANCE, PM_POWERSAVE):
                # esp_wifi_set_ps -> ESP_ERR_INVALID_ARG, which the port's
                # esp_exceptions_helper (network_common.c) has no text for
                raise RuntimeError("Wifi Unknown Error 0x0102")
            r.pm = kw["pm"]
            r._meter()
        if "reconnects" in kw:
            n = kw["reconnects"]
            r.reconnect_limit = 0 if n < 0 else (n + 1) & 0xFF

    def scan(self):
        w = simboard.board.wifi
        if not self._r.active or w.down:
            return []
        return [(s.encode(), b"\x00" * 6, 6, v[1], 3, False) for s, v in w.aps.items()]


def hostname(name=None):
    return "esp32" if name is None else None
