"""How long the ESP32's blocking calls take, for the virtual clock: a typical
and a worst-case profile. Sources and derivations: docs/timing.md (every
figure there has its datasheet, Espressif document or published
measurement).

    import timing
    timing.use("worst")
    timing.P.flash_erase_us

The shims charge these durations where the chip spends them:
- simflash: every 4 KB sector erase and every page program, with the
  ISRs that are not IRAM-safe held back (vclock.flash_op);
- esp32.NVS: every key write (three small programs; a page erase every
  NVS_ENTRIES writes);
- machine.I2C: every transaction (fixed overhead plus 9 clocks a byte);
- simnet (the sim node's socket and ssl): DNS for a host name, the TLS
  handshake's crypto (no callbacks meanwhile), network round trips.
Not charged (docs/timing.md says why): gc.collect() (2-5 ms measured on
an ESP32 without SPIRAM), hashing (hardware SHA-256, >= 8 MB/s), Python
bytecode.
"""


class Profile:
    def __init__(self, name, **kw):
        self.name = name
        for k, v in kw.items():
            setattr(self, k, v)


PROFILES = {
    "typical": Profile(
        "typical",
        flash_erase_us=45000,  # 4 KB sector erase, W25Q-JV family tSE typ
        flash_prog_us=800,  # one page program (<= 256 B), tPP typ (0.4-0.8 ms)
        nvs_progs=3,  # entry + bitmap + old entry marked erased
        i2c_overhead_us=150,  # ESP-IDF legacy driver, per transaction
        i2c_bit_us=25,  # 400 kHz: 2.5 us a clock (9 clocks a byte)
        dns_us=20000,  # a LAN resolver's answer
        # public-key work at 160 MHz (docs/timing.md: ESP-IDF's RSA bound, wolfSSL's ESP32 ECC log x 1.5)
        rsa2048_public_us=19000,  # one RSA-2048 public operation (verify or encrypt)
        ecdhe_us=800000,  # P-256 key pair + shared secret
        ecdsa_verify_us=760000,  # one P-256 signature verify
        rtt_us=5000,  # one network round trip on a WLAN
        wifi_connect_us=1800000,  # association + DHCP
        image_verify_us_per_kb=230,  # set_boot: read at 40 MHz DIO (10 MB/s) + hardware SHA (8 MB/s)
    ),
    "worst": Profile(
        "worst",
        flash_erase_us=400000,  # tSE max
        flash_prog_us=3000,  # tPP max
        nvs_progs=3,
        i2c_overhead_us=250,
        i2c_bit_us=25,
        dns_us=7000000,  # one unanswering server: queries at 0, 1, 2, 4 s; given up at ~7 s
        rsa2048_public_us=28000,
        ecdhe_us=930000,
        ecdsa_verify_us=900000,
        rtt_us=100000,
        wifi_connect_us=4000000,
        image_verify_us_per_kb=460,  # twice: cache misses, SHA engine shared with TLS
    ),
}
NVS_ENTRIES = 126  # 32-byte entries per 4 KB NVS page: a page change then

P = PROFILES["typical"]


def use(name):
    """Select a profile for every shim ("typical" or "worst")."""
    global P
    if name not in PROFILES:
        raise ValueError("timing: %s (choose from %s)" % (name, ", ".join(sorted(PROFILES))))
    P = PROFILES[name]
    return P


def i2c_us(nbytes):
    """A transaction of `nbytes` on the wire (address and register bytes
    included): the driver's overhead and 9 clocks a byte."""
    return P.i2c_overhead_us + nbytes * 9 * P.i2c_bit_us // 10


def flash_prog_us(nbytes):
    return ((nbytes + 255) // 256) * P.flash_prog_us
