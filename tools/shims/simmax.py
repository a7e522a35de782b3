"""Register-level simulated MAX30102 and MAX86150 for the I2C shim.

    import simboard, simmax, waveforms
    chip = simmax.SimMAX86150(int_pin=4, ecg=waveforms.Counter(0, 1), pleth=...)
    simboard.board.i2c(0, 22, 21).attach(0x5E, chip)

What is modelled as the datasheets describe: the register maps the
drivers use, the 32-sample FIFO with FIFO_WR_PTR/FIFO_RD_PTR and
OVF_COUNTER (saturating at 31, reset when a whole sample is popped),
stop-on-full or roll-over, auto-increment of the register address except
on FIFO_DATA, samples produced at the configured rate (SR / SMP_AVE,
averaging done on the chip) from the virtual clock, the almost-full flag
(re-asserted on every sample at or above the threshold) and the open-drain
INT pin, soft reset, shutdown, the MAX30102 die temperature, left-justified
MAX30102 data at the pulse width's resolution, 19-bit PPG and 18-bit two's
complement ECG on the MAX86150.

Waveforms come from `waveforms` sources (real records or synthetic); the
optical path is `waveforms.Optics`. Reality and fault knobs live here and
on the I2C bus (nack/timeout/stick): see `Knobs`.

Guarantee: producing samples and serving register reads allocate nothing
once configured (the INT event is re-timed with Clock.rearm), so the
firmware's allocation proofs can run against this model. Non-guarantee:
after 2**30 us of virtual time (18 min) the clock's now_us is a long int
on 32-bit MicroPython, so that proof only holds in the first 18 minutes.
"""
import simboard

_DEPTH = 32
_SLOT_BYTES = 12  # up to 4 elements x 3 bytes per FIFO sample


class Knobs:
    """Reality and fault knobs shared by both chips (change any time)."""

    def __init__(self):
        self.noise = 0  # PPG noise, counts (peak, triangular distribution)
        self.ecg_noise = 0  # ECG noise, counts
        self.motion = None  # (start_us, end_us, amplitude counts)
        self.finger_off = False
        self.lead_off = False
        self.saturate = False  # photodiode flooded: PPG at full scale
        self.led_swap = False  # LED1/LED2 driver wired to the other LED
        self.die_temp_c16 = 30 * 16  # die temperature, 1/16 degree C


class _SimMaxim:
    PART_ID = 0
    REG_DATA = 0x07

    def __init__(self, int_pin=None, ecg=None, pleth=None, optics=None):
        import waveforms
        self.clock = simboard.board.clock
        self.int_pin = int_pin
        # one blood-volume pulse seen by both wavelengths; one ECG
        self.sources = {"ecg": ecg, "pleth": pleth}
        self._p = [0] * 32  # pleth values of the internal samples averaged into one output
        self.optics = optics or waveforms.Optics()
        self.knobs = Knobs()
        self.regs = bytearray(256)
        self.fifo = bytearray(_DEPTH * _SLOT_BYTES)
        self.kinds = bytearray(4)  # element kind per slot: 1 IR, 2 red, 9 ECG
        self.nslots = 0
        self._byte = 0  # byte position within the sample being popped
        self._ev = None
        self._rng = 12345
        self.produced = 0  # samples generated (stored or dropped)
        self.dropped = 0  # samples lost to a full FIFO
        self.fill_max = 0  # the most samples the FIFO held
        self.fill_max_us = 0  # when it first held that many (virtual time)
        self.first_drop_us = None  # when the first sample was lost
        self.drops = []  # [[first lost sample's virtual us, samples lost in a row]] (first 100)
        self.part_id = self.PART_ID
        self.running = False
        self.sr = self.avg = self.ecg_rate = 0
        self.on_stream = None  # called when the recordings restart from the top
        self._power_on_reset()
        self._int_release()  # the breakout's pull-up holds INT high

    # -- configuration derived from registers (allocation allowed) ---------
    def _power_on_reset(self):
        r = self.regs
        for i in range(256):
            r[i] = 0
        self.count = 0
        self._byte = 0
        self.running = False
        self._por_defaults()
        self._reconfigure()

    def _por_defaults(self):
        pass

    def _reconfigure(self):
        """Derive the chip's state from its registers after a write; restart
        the sample clock only when what it depends on changed."""
        was = (self.running, self.sr, self.avg, self.nslots, self.ecg_rate)
        if self.regs[self.CTRL_REG] & self.RESET_BIT:  # back to power-on values, bit self-clears
            self._power_on_reset()
            return
        self._decode_regs()
        self._meter_fields()
        simboard.board.power.sensor(self)  # powerstate: allocation-free if unchanged
        if (self.running, self.sr, self.avg, self.nslots, self.ecg_rate) != was:
            self._start_timing() if self.running else self._arm()

    def _start_timing(self):
        """(Re)start sample timing: output period = avg * 1e6 / sr us."""
        self._num = self.avg * 1000000
        self._den = self.sr
        self._step = self._num // self._den
        self._rem_step = self._num % self._den
        self._rem = 0
        self.next_us = self.clock.now_us + self._step
        for name in ("ecg", "pleth"):
            s = self.sources[name]
            if s is not None:
                s.start(self.ecg_rate if name == "ecg" else self.sr)
        if self.on_stream is not None:
            self.on_stream()
        self._arm()

    def _meter_fields(self):
        """What the power meter (powerstate.Meter.sensor) reads: the PPG core
        and the ECG front end on or off, and the LED drive - each lit LED's
        pulse amplitude (uA), the pulse width (us) and LED pulses per second
        (the internal sample rate, before averaging; two pulses per sample
        on the MAX86150's PPG_SR codes 11-15)."""
        on = self.running
        self.m_part = self.PART_NAME
        self.m_ppg = on and self.has_ppg
        self.m_ecg = on and self._ecg_in()
        lit = self.m_ppg
        self.m_ir_ua = self.led_ua_ir if lit and self._led_lit(1) else 0
        self.m_red_ua = self.led_ua_red if lit and self._led_lit(2) else 0
        self.m_pw_us = self.pw_us
        self.m_pps = self.sr * self.pulses if lit else 0

    def _led_lit(self, kind):
        for j in range(self.nslots):
            if self.kinds[j] == kind:
                return True
        return False

    def _ecg_in(self):
        return self._led_lit(9)

    # -- I2C device interface (see simboard.I2CBus) -------------------------
    def read_into(self, reg, buf):
        self.catch_up()
        for i in range(len(buf)):
            if reg == self.REG_DATA:
                buf[i] = self._pop_byte()
            else:
                buf[i] = self._read_reg(reg)
                reg = (reg + 1) & 0xFF

    def write(self, reg, data):
        self.catch_up()
        for i in range(len(data)):
            self._write_reg(reg, data[i])
            reg = (reg + 1) & 0xFF
        self._reconfigure()

    def _read_reg(self, reg):
        r = self.regs
        if reg == 0xFF:
            return self.part_id
        v = r[reg]
        if reg <= 0x01:  # interrupt status: cleared on read
            r[reg] = 0
            if reg == 0:
                self._int_release()
        return v

    def _write_reg(self, reg, v):
        if reg == 0x04 or reg == 0x06:
            self.regs[reg] = v & 0x1F
            self.count = (self.regs[0x04] - self.regs[0x06]) & 0x1F
            self._byte = 0
        elif reg == 0x05:
            self.regs[reg] = v & 0x1F
        elif reg > 0x01 and reg != 0xFF:
            self.regs[reg] = v

    def _pop_byte(self):
        r = self.regs
        if self.count == 0:
            return 0  # reading an empty FIFO returns no new data
        b = self.fifo[r[0x06] * _SLOT_BYTES + self._byte]
        self._byte += 1
        if self._byte >= 3 * self.nslots:
            self._byte = 0
            r[0x06] = (r[0x06] + 1) & 0x1F
            self.count -= 1
            simboard.board.power.sample()  # the CPU's work for it (powerstate)
            r[0x05] = 0  # OVF_COUNTER resets when a whole sample is popped
            if self.a_full_clr and self.count < self.threshold:
                r[0] &= 0x7F
                self._int_release()
        return b

    # -- interrupt ------------------------------------------------------------
    def _int_release(self):
        if self.int_pin is not None and not self.regs[0] & self.regs[2] & 0xC0:
            simboard.board.pin(self.int_pin).drive(1)

    def _int_assert(self):
        if self.int_pin is not None:
            simboard.board.pin(self.int_pin).drive(0)

    def _arm(self):
        """Time the event that raises the almost-full flag (no allocation)."""
        if not self.running or not self.regs[2] & 0x80:
            if self._ev is not None:
                self.clock.cancel(self._ev)
            return
        m = self.threshold - self.count - 1
        if m < 0:
            m = 0
        due = self.next_us + (m * self._num + self._rem) // self._den
        if self._ev is None:
            self._ev = self.clock.call_at(due, self.catch_up)
        else:
            self.clock.rearm(self._ev, due)

    # -- sample production ----------------------------------------------------
    def catch_up(self):
        if not self.running:
            return
        now = self.clock.now_us
        produced = False
        while self.next_us <= now:
            self._produce()
            produced = True
            self.next_us += self._step
            self._rem += self._rem_step
            if self._rem >= self._den:
                self._rem -= self._den
                self.next_us += 1
        if produced:
            self._arm()

    def _produce(self):
        r = self.regs
        self.produced += 1
        if self.count >= _DEPTH:
            if not self.dropped:
                self.first_drop_us = self.next_us
            d = self.drops
            if d and d[-1][2]:
                d[-1][1] += 1
            elif len(d) < 100:
                d.append([self.next_us, 1, True])
            if self.fill_max < _DEPTH:
                self.fill_max = _DEPTH  # as full as it gets (the loss is `dropped`)
                self.fill_max_us = self.next_us
            if r[0x05] < 0x1F:
                r[0x05] += 1
            self.dropped += 1
            if not self.rollover:
                self._flag()
                return
            r[0x06] = (r[0x06] + 1) & 0x1F  # the oldest sample is overwritten
            self.count -= 1
        base = r[0x04] * _SLOT_BYTES
        f = self.fifo
        kinds = self.kinds
        src = self.sources["pleth"]
        if src is not None and self.has_ppg:
            p = self._p
            for a in range(self.avg):
                p[a] = src.next()
        for j in range(self.nslots):
            v = self._element(kinds[j]) & 0xFFFFFF
            f[base] = v >> 16
            f[base + 1] = (v >> 8) & 0xFF
            f[base + 2] = v & 0xFF
            base += 3
        r[0x04] = (r[0x04] + 1) & 0x1F
        self.count += 1
        if self.drops and self.drops[-1][2]:
            self.drops[-1][2] = False  # that run of losses is over
        if self.count > self.fill_max:
            self.fill_max = self.count
            self.fill_max_us = self.next_us
        self._flag()

    def _flag(self):
        if self.count >= self.threshold:
            self.regs[0] |= 0x80
            if self.regs[2] & 0x80:
                self._int_assert()

    def noise(self, amp):
        """Triangular noise in [-amp, amp] from a small-int LCG."""
        if amp <= 0:
            return 0
        x = (self._rng * 75 + 74) % 65537
        y = (x * 75 + 74) % 65537
        self._rng = y
        return ((x + y - 65536) * amp) >> 16

    def _ppg(self, label):
        """One averaged PPG sample (counts) for the FIFO element labelled IR
        (1) or red (2). With led_swap the LED on that driver has the other
        wavelength, as on clone boards."""
        kn = self.knobs
        full = self.full_scale
        if kn.saturate:
            return full
        led = self.led_ua_ir if label == 1 else self.led_ua_red
        wavelength = 3 - label if kn.led_swap else label
        acc = 0
        pl = self._p
        for a in range(self.avg):
            p = pl[a]
            if kn.finger_off:
                v = self.optics.ambient(full)
            else:
                v = self.optics.counts(wavelength, led, p, self.cpn16)
            acc += v
        v = acc // self.avg + self.noise(kn.noise)
        m = kn.motion
        if m is not None and m[0] <= self.clock.now_us < m[1]:
            v += self.noise(m[2]) + m[2] // 2
        if v < 0:
            v = 0
        elif v > full:
            v = full
        return v & self.res_mask


class SimMAX30102(_SimMaxim):
    PART_ID = 0x15
    PART_NAME = "max30102"
    ADDRESS = 0x57
    CTRL_REG = 0x09  # MODE_CONFIG: RESET is bit 6
    RESET_BIT = 0x40
    _RATES = (50, 100, 200, 400, 800, 1000, 1600, 3200)
    _RANGES = (2048, 4096, 8192, 16384)
    _PW_US = (69, 118, 215, 411)  # LED_PW codes (lib/max30102.py PULSE_WIDTHS)

    def _decode_regs(self):
        r = self.regs
        mode = r[0x09] & 0x07
        self.nslots = 2 if mode == 3 else 1 if mode == 2 else 0
        for j in range(4):
            self.kinds[j] = 0
        if self.nslots:
            self.kinds[0] = 2  # LED1 = red
            if self.nslots == 2:
                self.kinds[1] = 1  # LED2 = IR
        self.running = self.nslots > 0 and not r[0x09] & 0x80
        self.has_ppg = self.nslots > 0
        self.avg = 1 << min((r[0x08] >> 5) & 7, 5)
        self.rollover = bool(r[0x08] & 0x10)
        self.threshold = _DEPTH - (r[0x08] & 0x0F)
        self.a_full_clr = False  # MAX30102: A_FULL clears only on status read
        self.sr = self._RATES[(r[0x0A] >> 2) & 7]
        bits = 15 + (r[0x0A] & 3)
        self.pw_us = self._PW_US[r[0x0A] & 3]
        self.pulses = 1
        self.full_scale = (1 << 18) - 1
        self.res_mask = ((1 << 18) - 1) & ~((1 << (18 - bits)) - 1)
        rng_na = self._RANGES[(r[0x0A] >> 5) & 3]
        self.cpn16 = (1 << 18) * 16 // rng_na  # counts per nA, x16
        self.led_ua_red = r[0x0C] * 200
        self.led_ua_ir = r[0x0D] * 200
        if r[0x21] & 1:  # TEMP_EN: the conversion completes at once here
            t = self.knobs.die_temp_c16
            r[0x1F] = (t >> 4) & 0xFF
            r[0x20] = t & 0x0F
            r[0x21] = 0
            r[0x01] |= 0x02

    def _element(self, kind):
        return self._ppg(kind)  # only PPG elements: 1 IR, 2 red


class SimMAX86150(_SimMaxim):
    PART_ID = 0x1E
    PART_NAME = "max86150"
    ADDRESS = 0x5E
    CTRL_REG = 0x0D  # SYS_CONTROL: RESET is bit 0
    RESET_BIT = 0x01
    _RATES = (10, 20, 50, 84, 100, 200, 400, 800, 1000, 1600, 3200, 10, 20, 50, 84, 100)
    _ECG_RATES = (1600, 800, 400, 200, 3200, 1600, 800, 400)
    _RANGES = (4096, 8192, 16384, 32768)
    _IA10 = (50, 95, 200, 500)  # IA gain x10
    _PW_US = (50, 100, 200, 400)  # PPG_LED_PW codes (lib/max86150.py PULSE_WIDTHS)

    def _por_defaults(self):
        self.regs[0x3C] = 0x03  # ECG 200 sps
        self.regs[0x3E] = 0x0D  # PGA 8, IA 9.5

    def _decode_regs(self):
        r = self.regs
        fd = (r[0x09] & 0x0F, r[0x09] >> 4, r[0x0A] & 0x0F, r[0x0A] >> 4)
        n = 0
        ppg = False
        for j in range(4):
            self.kinds[j] = 0
        for c in fd:
            if c == 0:
                break
            self.kinds[n] = c
            n += 1
            ppg = ppg or c != 9
        self.nslots = n
        self.has_ppg = ppg
        self.running = n > 0 and bool(r[0x0D] & 0x04) and not r[0x0D] & 0x02
        self.ecg_rate = self._ECG_RATES[r[0x3C] & 7]
        self.avg = 1 << min(r[0x0F] & 7, 5)
        self.sr = self._RATES[(r[0x0E] >> 2) & 0x0F] if ppg else self.ecg_rate
        self.pw_us = self._PW_US[r[0x0E] & 3]
        self.pulses = 2 if (r[0x0E] >> 2) & 0x0F >= 11 else 1  # PPG_SR 11-15: two pulses
        if not ppg:
            self.avg = 1
        self.rollover = bool(r[0x08] & 0x10)
        self.a_full_clr = bool(r[0x08] & 0x40)
        self.threshold = _DEPTH - (r[0x08] & 0x0F)
        self.full_scale = (1 << 19) - 1
        self.res_mask = self.full_scale
        self.cpn16 = (1 << 19) * 16 // self._RANGES[r[0x0E] >> 6]
        step = 200 * (1 + (r[0x14] & 3))
        self.led_ua_ir = r[0x11] * step
        self.led_ua_red = r[0x12] * step
        gain10 = self._IA10[r[0x3E] & 3] * (1 << ((r[0x3E] >> 2) & 3))
        # counts = uV * gain / 12.247 uV (driver's ECG_LSB_UV_X_GAIN)
        self.ecg_num = gain10 * 100

    def _element(self, kind):
        if kind != 9:
            return self._ppg(kind)  # 1 IR, 2 red
        kn = self.knobs
        if kn.lead_off:
            v = 131071 - 40 + self.noise(40)  # input drifts to the positive rail
        else:
            src = self.sources["ecg"]
            uv = src.next() if src is not None else 0
            v = (uv * self.ecg_num) // 12247 + self.noise(kn.ecg_noise)
            m = kn.motion
            if m is not None and m[0] <= self.clock.now_us < m[1]:
                v += self.noise(m[2] >> 2)
        if v > 131071:
            v = 131071
        elif v < -131072:
            v = -131072
        return v & 0x3FFFF


# The reference wiring (README "Wiring"): ESP32 I2C0 on GPIO22 (SCL) and
# GPIO21 (SDA), the chip's open-drain INT on GPIO4.
BUS, SCL, SDA, INT = 0, 22, 21, 4


def attach(chip, bus=BUS, scl=SCL, sda=SDA):
    """Put a simulated chip on the current board's I2C bus."""
    simboard.board.i2c(bus, scl, sda).attach(chip.ADDRESS, chip)
    return chip


def attach_spec(spec):
    """Put the simulated sensor chip on the board: spec = {"chip":
    "max86150"|"max30102", "ecg": WFDB base path or None, "pleth": BIDMC
    CSV(.gz) path or "pleth_i16": its decoded cache, "spo2": target}; without
    paths the sources are synthetic (72/min)."""
    import waveforms
    if spec.get("ecg"):
        ecg = waveforms.Mitdb(spec["ecg"], 0)
    else:
        ecg = waveforms.Table(waveforms.ecg_beat(72, 500), 500)
    if spec.get("pleth_i16"):
        pleth = waveforms.Int16File(spec["pleth_i16"], 125)
    elif spec.get("pleth"):
        pleth = waveforms.BidmcPleth(spec["pleth"])
    else:
        pleth = waveforms.Table(waveforms.ppg_beat(72, 125), 125)
    optics = waveforms.Optics(spo2=spec.get("spo2", 97.0))
    cls = SimMAX86150 if spec.get("chip", "max86150") == "max86150" else SimMAX30102
    return attach(cls(int_pin=INT, ecg=ecg, pleth=pleth, optics=optics))
