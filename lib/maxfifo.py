"""What the Maxim optical front ends (MAX30102, MAX86150) really share.

Both chips keep a 32-sample FIFO behind the same registers: interrupt
status 0x00/0x01, enables 0x02/0x03, FIFO_WR_PTR 0x04, OVF_COUNTER 0x05,
FIFO_RD_PTR 0x06, FIFO_DATA 0x07 and PART_ID 0xFF. A FIFO sample is 3 bytes
(MSB first) per active channel. This module owns I2C access with bounded
retries, the probe, the burst FIFO read into preallocated buffers with
overflow accounting, and I2C bus recovery. The chip modules add their
register maps, validated configuration and the per-channel decoding.

    from max86150 import MAX86150
    sensor = MAX86150(machine.I2C(0, scl=22, sda=21))  # probes PART_ID
    sensor.configure(sample_rate=200, ecg_rate=200)
    n = sensor.read_fifo()          # samples now in sensor.ir/red/ecg[:n]

Guarantees:
- read_fifo() allocates nothing on the heap once the driver is built (the
  status/pointer burst and the FIFO burst land in buffers made in
  __init__, one memoryview per possible sample count is made up front).
- every sample between FIFO_RD_PTR and FIFO_WR_PTR is read and decoded in
  one burst; samples the chip dropped are added to `lost` from OVF_COUNTER.
- an I2C error is retried `retries` times, then SensorBusError is raised;
  no call loops forever.
Non-guarantees:
- OVF_COUNTER saturates at 31 on the chip, so one read can only prove that
  at least 31 samples were lost; `lost_saturated` counts such reads.
- a FIFO exactly full (32 unread) with no overflow yet and the almost-full
  flag already cleared reads as empty until the next sample overflows; the
  driver reads the status register in the same burst to avoid this, which
  also clears the chip's interrupt (the INT pin is released by every read).
"""
from micropython import const

REG_INT_STATUS1 = const(0x00)
REG_FIFO_WR_PTR = const(0x04)
REG_FIFO_DATA = const(0x07)
REG_FIFO_CONFIG = const(0x08)
REG_PART_ID = const(0xFF)

FIFO_DEPTH = const(32)
_PTR_MASK = const(0x1F)
_A_FULL = const(0x80)
_STATUS_BURST = const(7)  # INT1 INT2 EN1 EN2 WR_PTR OVF RD_PTR

AVERAGING = (1, 2, 4, 8, 16, 32)  # SMP_AVE codes 0..5 on both chips


class SensorError(Exception):
    """Base of everything the sensor drivers raise about the hardware."""


class SensorNotFound(SensorError):
    """Nothing, or the wrong chip, answers at the address."""


class SensorBusError(SensorError):
    """The chip did not answer after the bounded retries (errno kept)."""

    def __init__(self, msg, errno=0):
        super().__init__(msg)
        self.errno = errno


def choice(name, value, allowed):
    """Index of value in the datasheet's allowed values, or ValueError."""
    for i in range(len(allowed)):
        if allowed[i] == value:
            return i
    raise ValueError("%s=%r is not one of %r" % (name, value, allowed))


def led_code(name, ma, step_ma, max_code=255):
    """LEDx_PA code for a current in mA; rejects currents off the step."""
    code = int(round(ma / step_ma))
    if code < 0 or code > max_code or abs(code * step_ma - ma) > 1e-6:
        raise ValueError("%s=%r mA: allowed 0..%g mA in %g mA steps"
                         % (name, ma, max_code * step_ma, step_ma))
    return code


def a_full_code(a_full):
    """FIFO_A_FULL holds the free slots left when the interrupt fires."""
    if not 17 <= a_full <= 32:
        raise ValueError("a_full=%r: the chip can interrupt at 17..32 unread samples" % (a_full,))
    return FIFO_DEPTH - a_full


class FifoSensor:
    """Base class: one instance per chip on an injected I2C bus."""

    PART_ID = 0
    NAME = "?"
    CTRL_REG = 0  # the register holding the RESET and SHDN bits
    RESET_BIT = 0
    SHDN_BIT = 0

    def __init__(self, i2c, addr, slots, retries=3):
        self.i2c = i2c
        self.addr = addr
        self.retries = retries
        self.lost = 0  # samples the chip dropped (OVF_COUNTER), total
        self.lost_saturated = 0  # reads where OVF_COUNTER was at 31
        self.bus_errors = 0  # failed transfers, retried or not
        self.reads = 0
        self._status = bytearray(_STATUS_BURST)
        self._reg = bytearray(1)
        self._max_slots = slots
        self._buf = bytearray(FIFO_DEPTH * 3 * slots)
        self._set_slots(slots)
        self.probe()

    def _set_slots(self, nslots):
        """Rebuild the per-count views for samples of nslots x 3 bytes."""
        mv = memoryview(self._buf)
        step = 3 * nslots
        self._views = [mv[:k * step] for k in range(FIFO_DEPTH + 1)]
        self.nslots = nslots

    # -- register access with bounded retries -----------------------------
    def _fail(self, what, err):
        return SensorBusError("%s at 0x%02x: %s failed after %d tries (errno %d)"
                              % (self.NAME, self.addr, what, self.retries + 1, err), err)

    # read_into and write_reg keep their own retry loops: a shared helper
    # taking the bus method would create a bound method per call (heap).
    def read_into(self, reg, buf):
        tries = self.retries
        while True:
            try:
                self.i2c.readfrom_mem_into(self.addr, reg, buf)
                return
            except OSError as e:
                self.bus_errors += 1
                if tries <= 0:
                    raise self._fail("read 0x%02x" % reg, e.args[0] if e.args else 0)
                tries -= 1

    def read_reg(self, reg):
        self.read_into(reg, self._reg)
        return self._reg[0]

    def write_reg(self, reg, value):
        b = self._reg
        b[0] = value
        tries = self.retries
        while True:
            try:
                self.i2c.writeto_mem(self.addr, reg, b)
                return
            except OSError as e:
                self.bus_errors += 1
                if tries <= 0:
                    raise self._fail("write 0x%02x" % reg, e.args[0] if e.args else 0)
                tries -= 1

    def update_reg(self, reg, mask, value):
        self.write_reg(reg, (self.read_reg(reg) & ~mask) | (value & mask))

    def probe(self):
        try:
            pid = self.read_reg(REG_PART_ID)
        except SensorBusError as e:
            raise SensorNotFound("%s: no answer at I2C address 0x%02x (errno %d); check wiring and power"
                                 % (self.NAME, self.addr, e.errno))
        if pid != self.PART_ID:
            raise SensorNotFound("%s: I2C address 0x%02x answers with PART_ID 0x%02x, expected 0x%02x"
                                 % (self.NAME, self.addr, pid, self.PART_ID))
        return pid

    def soft_reset(self, polls=10):
        """Set RESET; the chip clears the bit when done (bounded polling)."""
        import time
        self.write_reg(self.CTRL_REG, self.RESET_BIT)
        for _ in range(polls):
            time.sleep_ms(1)
            if not self.read_reg(self.CTRL_REG) & self.RESET_BIT:
                return
        raise SensorError("%s at 0x%02x: reset did not complete" % (self.NAME, self.addr))

    def shutdown(self):
        self.update_reg(self.CTRL_REG, self.SHDN_BIT, self.SHDN_BIT)

    def wake(self):
        self.update_reg(self.CTRL_REG, self.SHDN_BIT, 0)

    def rebind(self, i2c):
        """Use a re-created bus object (after recover_bus)."""
        self.i2c = i2c

    # -- FIFO --------------------------------------------------------------
    def clear_fifo(self):
        """Zero the write/read pointers and the overflow counter."""
        for reg in (0x04, 0x05, 0x06):
            self.write_reg(reg, 0)

    def read_fifo(self):
        """Read and decode every unread sample; returns how many (0..32)."""
        st = self._status
        self.read_into(REG_INT_STATUS1, st)
        wr = st[4] & _PTR_MASK
        ovf = st[5] & _PTR_MASK
        n = (wr - (st[6] & _PTR_MASK)) & _PTR_MASK
        if n == 0 and (ovf or st[0] & _A_FULL):
            n = FIFO_DEPTH  # pointers equal: empty, unless the chip says full
        if ovf:
            self.lost += ovf
            if ovf == _PTR_MASK:
                self.lost_saturated += 1
        self.reads += 1
        if n == 0:
            return 0
        self.read_into(REG_FIFO_DATA, self._views[n])
        self._decode(n)
        return n

    def _decode(self, n):
        raise NotImplementedError


def recover_bus(scl, sda, pulses=9):
    """Free a bus whose slave holds SDA low: clock SCL up to 9 times as a
    GPIO until SDA is released, then make a STOP. The caller re-creates its
    I2C object afterwards (the pins were taken over as GPIOs)."""
    import time
    from machine import Pin
    c = Pin(scl, Pin.OPEN_DRAIN, value=1)
    d = Pin(sda, Pin.OPEN_DRAIN, value=1)
    for _ in range(pulses):
        c.value(0)
        time.sleep_us(5)
        c.value(1)
        time.sleep_us(5)
    d.value(0)  # STOP: SDA rises while SCL is high
    time.sleep_us(5)
    d.value(1)
