"""Detection pipeline: the sampler's rings -> beats, rates, SpO2, alerts.

    det = Detect(sampler, mains=50, thresholds={"spo2_low": 88})
    det.service()          # after each sampler.service(); never raises
    det.hr_x10, det.hr_valid, det.spo2_x10, det.spo2_valid, det.alerts.active
    det.rhythm.count, det.rhythm.beat(i), det.rhythm.flags(i)  # published beats

Consumes every new sample of the sampler's rings once, in order:
  ECG  -> rhythm.Rhythm over qrs.QRSDetector at the sampler rate (input
          shifted to ~5 uV/unit): published beats, monitor HR, VF/AF/asystole
  IR   -> ppg.PulseDetector, red -> spo2.SpO2, both decimated to ~100 sps
          (the mean of rate//100 samples) with 17-bit words
  all  -> alerts.Alerts on the sample clock (ms derived from sample counts)

Heart rate with its quality (hr_src, hr_q 0-100, hr_valid):
  ECG (hr_src 1) while the leads are on and a QRS came in the last 3 s:
  rhythm.hr_x10 (median of clean RRs); valid if at least half of the last
  8 beats were clean (hr_q) and the rhythm is not VF;
  else PPG (hr_src 2) while the finger is on: ppg.hr_x10; valid if the
  pulse SQI (hr_q) is >= 50 and there is no ECG (no ECG channel, or the
  leads are off) - with the leads on, the ECG had no valid rate because of
  noise or no beats, and the PPG is not trusted over it;
  else none (hr_x10 0, hr_src 0). During VF hr_x10 is 0 and not valid.
  A rate the node does not vouch for is still published, with hr_valid
  False; the HR alerts see only valid rates.
SpO2: spo2_x10 is spo2.NO_READING (-1) whenever the SpO2 gate says so;
spo2_valid also needs the finger on and the pulse SQI >= 50; spo2_q is the
share of the last 5 pulses that passed the gate (0-100).
rhythm_state: lib/rhythm's VF 1 / AF 2 bits (0 while the leads are off), and
ASYS 4 while the asystole alert is up.
LED floor (led_floor=True): the LEDs are kept at the lowest drive whose
pulse still meets the SpO2 pipeline's floor. After each pulse the SpO2 gate
passed (with the pulse SQI >= 50), a channel whose AC is under LED_AC_MIN
low-passed units gets its DC goal raised to reach twice that at once; after
8 such pulses in a row, a channel at 3x or more gets it lowered to reach
twice that (sampler.set_goals: GOAL_MIN..GOAL_MAX of full scale). 8 pulses
in a row that fail the gate put both goals back to the default (a poor
signal gets the most light). The 3 pulses after a change are not judged.
Why 32 units: R's worst quantisation error is then 1/32 + 1/32 of R, under
0.9 SpO2 points on one beat at R 0.5 (the reading is the median of 5).

Guarantees: service() allocates nothing in steady state and keeps up with
any backlog up to the ring length; a consumer that fell further behind
(the loop was starved) skips to the oldest sample still held and counts the
skipped samples in `skipped` (the detectors see a gap, they do not crash).
Non-guarantees: the sampler's relabelled red/IR after a swap test are
trusted as they are; rates are only as good as the detectors' docs say.
"""
from micropython import const

from alerts import Alerts
from ppg import PulseDetector
from qrs import QRSDetector
from rhythm import Rhythm
from ring import Ring
from spo2 import OK as SPO2_OK
from spo2 import SpO2

_PPG_RING = const(64)  # decimated red/IR handed to the detectors
_PPG_SLICE = const(48)  # decimated samples per pass (fits _PPG_RING)
_MS_MASK = const(0x1FFFFFFF)
_FRESH_MS = const(3000)  # an ECG rate older than this gives way to PPG
_VALID_Q = const(50)  # hr_q / SQI needed for a valid rate
_SRC_NONE = const(0)  # hr_src
_SRC_ECG = const(1)
_SRC_PPG = const(2)
_ASYS = const(4)  # rhythm_state: asystole (lib/rhythm has VF 1, AF 2)
LED_AC_MIN = const(32)  # the LED floor: a passed pulse's AC, SpO2 low-passed units
_LED_RUN = const(8)  # pulses in a row before lowering (or, failing, restoring)
_LED_SETTLE = const(3)  # pulses not judged after a goal change


class Detect:
    def __init__(self, sampler, mains=50, thresholds=None, ppg_bits=17, led_floor=False):
        import gc
        gc.collect()  # the buffers below then fill the holes garbage left, not the heap's free end
        rings = sampler.rings
        cfg = sampler.cfg
        rate = sampler.rate
        self.smp = sampler
        self.rate = rate
        self.ecg = rings.get("ecg")
        self.ir = rings.get("ir")
        self.red = rings.get("red")
        self.qrs = self.rhythm = None
        if self.ecg is not None:
            lsb = cfg.get("ecg_lsb_uv", 5.0)
            shift = 0
            while lsb * (1 << shift) < 3.5:
                shift += 1
            self.qrs = QRSDetector(rate, mains, shift)
            self.rhythm = Rhythm(self.qrs)
        self.pulse = self.spo2 = None
        if self.ir is not None:
            self.dec = rate // 100 if rate >= 200 else 1
            full = cfg["full_scale"]
            sh = 0
            while (full >> sh) >= (1 << ppg_bits):
                sh += 1
            self.ppg_shift = sh
            self.slice = _PPG_SLICE * self.dec
            self.pulse = PulseDetector(rate // self.dec, invert=True)
            self.ir_d = Ring(_PPG_RING)
            if self.red is not None:
                self.spo2 = SpO2(self.pulse)
                self.red_d = Ring(_PPG_RING)
        self.alerts = Alerts(thresholds)
        self.cur = 0  # next sample number to consume
        self.ppg_cur = 0  # next raw sample for the PPG decimator
        self.skipped = 0
        self.ms = 0
        self._acc = 0
        self.last_beat_ms = -1
        self.seen_qrs = 0
        self.seen_pulse = 0
        self.hr_x10 = 0
        self.hr_valid = False
        self.hr_src = _SRC_NONE
        self.hr_q = 0
        self.spo2_x10 = -1
        self.spo2_valid = False
        self.spo2_q = 0
        self.rhythm_state = 0
        self.led_floor = led_floor and self.spo2 is not None
        self._led_run = 0  # pulses in a row that passed (> 0) or failed (< 0)
        self._led_settle = 0

    def service(self):
        ring = self.ecg if self.ecg is not None else self.ir
        if ring is None:
            return
        head = ring.head
        cur = self.cur
        if head - cur > ring.cap:
            self.skipped += head - ring.cap - cur
            cur = head - ring.cap
        if head == cur:
            return
        q = self.qrs
        rh = self.rhythm
        if q is not None and rh is not None:  # (made together)
            n0 = q.n
            rh.feed(ring.buf, ring.mask, cur, head)
            if q.count != self.seen_qrs:
                self.seen_qrs = q.count
                # self.ms is the time of sample n0 (the clock moves below)
                dt = ((q.beat(q.count - 1) - n0) * 1000) // self.rate
                self.last_beat_ms = (self.ms + dt) & _MS_MASK
        p = self.pulse
        if p is not None:
            a = cur
            while a < head:  # slices fit the decimated rings
                b = a + self.slice if head - a > self.slice else head
                self._ppg(p, a, b)
                a = b
        # the sample clock in ms: whole ms on, the remainder carried
        acc = self._acc + (head - cur) * 1000
        self.ms = (self.ms + acc // self.rate) & _MS_MASK
        self._acc = acc % self.rate
        self.cur = head
        self._outputs()

    def _ppg(self, p, a, b):
        dec = self.dec
        # whole decimation groups only; a partial group waits for the next call
        a0 = self.ppg_cur
        if a0 < a - dec + 1:
            a0 = a  # samples were skipped: restart the grouping there
        # (else a0 <= a: a partial group left by the last call, still in the ring)
        b0 = a0 + ((b - a0) // dec) * dec
        self.ppg_cur = b0
        if b0 <= a0:
            return
        ird = self.ir_d
        d0 = ird.head
        _decimate(self.ir, ird, a0, b0, dec, self.ppg_shift)
        if self.red is not None:
            _decimate(self.red, self.red_d, a0, b0, dec, self.ppg_shift)
        p.feed(ird.buf, ird.mask, d0, ird.head)
        ox = self.spo2
        if ox is not None:
            ox.finger_on = not self.smp.finger_off
            ox.feed(self.red_d.buf, self.red_d.mask, d0, ird.head)
            while self.seen_pulse < p.count:
                ox.beat(self.seen_pulse)
                self.seen_pulse += 1
                if self.led_floor:
                    self._led(ox, p)
        else:
            self.seen_pulse = p.count

    def _led(self, ox, p):
        """The LED floor (above), after one pulse was judged by the SpO2 gate."""
        if self._led_settle:
            self._led_settle -= 1
            return
        smp = self.smp
        led = smp.led  # goals, then DCs: IR, red (1/256 of full scale)
        gi = led[0]
        gr = led[1]
        run = self._led_run
        if ox.reason == SPO2_OK and p.sqi >= _VALID_Q:
            run = run + 1 if run > 0 else 1
            gi = _goal(gi, led[2], ox.ac_ir, run)
            gr = _goal(gr, led[3], ox.ac_red, run)
        else:
            run = run - 1 if run < 0 else -1
            if run <= -_LED_RUN:
                gi = gr = 255  # clipped to the default
        if smp.set_goals(gi, gr):
            run = 0
            self._led_settle = _LED_SETTLE
        self._led_run = run

    def _outputs(self):
        smp = self.smp
        age = -1
        hr = 0
        src = _SRC_NONE
        q = 0
        valid = False
        rh = self.rhythm
        state = 0
        if self.qrs is not None and self.last_beat_ms >= 0:
            age = (self.ms - self.last_beat_ms) & _MS_MASK
        elif self.qrs is not None:
            age = self.ms  # no beat since start
        if rh is not None and not smp.lead_off:
            state = rh.state
            if state & 1:  # VF: no rate, and the ECG has the say
                src = _SRC_ECG
            elif 0 <= age < _FRESH_MS and rh.hr_x10 > 0:
                hr = rh.hr_x10
                src = _SRC_ECG
                q = rh.hr_q
                valid = q >= _VALID_Q
        p = self.pulse
        if src == _SRC_NONE and p is not None and not smp.finger_off and p.hr_x10 > 0:
            hr = p.hr_x10
            src = _SRC_PPG
            q = p.sqi
            # with the ECG leads on, a PPG rate stands in only for an ECG too
            # noisy (or too quiet) to give one: the motion that spoils the
            # ECG spoils the PPG too, so it is never valid then
            valid = q >= _VALID_Q and (rh is None or smp.lead_off)
        self.hr_x10 = hr
        self.hr_src = src
        self.hr_q = q
        self.hr_valid = valid
        self.rhythm_state = state
        ox = self.spo2
        if ox is not None and p is not None:  # (SpO2 comes with the pulse)
            self.spo2_x10 = ox.spo2_x10
            self.spo2_q = ox.q
            self.spo2_valid = (ox.spo2_x10 > 0 and not smp.finger_off and p.sqi >= _VALID_Q)
        al = self.alerts
        al.update(self.ms, hr if valid else 0, self.spo2_x10 if self.spo2_valid else -1, age,
                  smp.lead_off, smp.finger_off and p is not None, smp.fault is not None, state)
        if al.active & 8:  # 1 << alerts.ASYSTOLE
            self.rhythm_state = state | _ASYS


def _goal(goal, dc, ac, run):
    """A channel's new DC goal: the DC that gives twice the floor (the AC
    scales with the DC), at once under the floor, after _LED_RUN passed
    pulses at 3x the floor or more; else the goal it has. A raise never
    lowers the goal, nor a lowering raise it (a DC window not yet seen is 0)."""
    if ac < LED_AC_MIN:
        g = dc * 2 * LED_AC_MIN // (ac if ac > 0 else 1)
        return g if g > goal else goal
    if run >= _LED_RUN and ac >= 3 * LED_AC_MIN:
        g = dc * 2 * LED_AC_MIN // ac
        return g if g < goal else goal
    return goal


def _decimate(src, dst, a, b, dec, sh):
    """Push onto Ring dst the mean of each dec samples of Ring src from a
    to b (b - a a multiple of dec), each sample cut by sh bits first.
    Locals only and the ring slots written directly: this runs for every
    raw PPG sample."""
    sb = src.buf
    sm = src.mask
    db = dst.buf
    dm = dst.mask
    h = dst.head
    if dec == 2:  # 200 sps: each pair summed in one expression, no inner loop
        for i in range(a, b, 2):
            db[h & dm] = ((sb[i & sm] >> sh) + (sb[(i + 1) & sm] >> sh)) // 2
            h += 1
    else:
        while a < b:  # (range() with a variable step allocates)
            s = 0
            for k in range(a, a + dec):
                s += sb[k & sm] >> sh
            db[h & dm] = s // dec
            h += 1
            a += dec
    dst.head = h
