"""The gateway's limits on what one login can cost the others (issue 19 §6).

    rl = RateLimiter(rate=10, burst=400, clock=time.monotonic)
    rl.allow("240ac4000001")        # False: over its rate - counted, never stored
    log = RefusalLog(window_s=60, clock=time.time)
    rows = log.add(outcome, login, seq, detail) + log.flush()   # rows for the store
    win = SeqWindow(width=1024)
    win.stale(dev, seq, lookup)     # True: far behind the newest stored

RateLimiter: a token bucket per login (the topic's device id: the broker's
ACL lets a login publish on its own topic only). A node's steady rate is
well under one frame a second, and after an outage it sends its whole
outbox (at most firmware/outbox MAX_FRAMES + RESERVE = 256 frames) at once:
the default burst (400) passes that backlog untouched, the default rate
(10/s) is ten times the steady rate. What is over is refused as "limited"
before it is decoded or looked up: it costs a dictionary lookup, so a flood
from one login cannot delay the others' frames.
RefusalLog: the refusal table gets, per (login, outcome) and per window,
the first refusal with its detail and, once the window ends, one row that
sums the rest ("N more"). So a flood of any size writes at most two rows per
login and outcome a minute; logins beyond MAX_KEYS open windows share one
key ("*"). The store also keeps at most Store.REFUSED_MAX rows (oldest go).
SeqWindow: the newest stored seq of each device (from the store on first
sight). An authentic frame more than `width` behind it is refused as
"stale": out-of-order delivery within a node's outbox (256 frames) is
accepted, a replay of an old frame whose row retention purged is not.
Guarantees: every method is O(1) per frame and never raises for any input.
Non-guarantee: the limits are per gateway process (workers each keep their
own buckets and windows).
"""
import time

RATE = 10.0  # frames per second per login, sustained
BURST = 400  # frames at once (a full outbox after an outage passes)
WINDOW_S = 60.0
MAX_KEYS = 4096
SEQ_WINDOW = 1024


class RateLimiter:
    def __init__(self, rate=RATE, burst=BURST, clock=time.monotonic):
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self._b = {}  # login -> [tokens, last time]

    def allow(self, login):
        now = self.clock()
        b = self._b.get(login)
        if b is None:
            if len(self._b) >= MAX_KEYS * 4:  # a bound on memory: forget buckets idle long
                cut = now - self.burst / self.rate  # enough to have refilled: same as new
                self._b = {k: v for k, v in self._b.items() if v[1] > cut}
            b = self._b[login] = [self.burst, now]
        else:
            b[0] = min(self.burst, b[0] + (now - b[1]) * self.rate)
            b[1] = now
        if b[0] >= 1:
            b[0] -= 1
            return True
        return False


class RefusalLog:
    def __init__(self, window_s=WINDOW_S, clock=time.time):
        self.window_s, self.clock = window_s, clock
        self._open = {}  # (login, outcome) -> [start, more, lo seq, hi seq]

    def add(self, outcome, login, seq, detail):
        """Rows to log now for one refusal: the first of its window, else none."""
        now = self.clock()
        key = (login, outcome)
        w = self._open.get(key)
        if w is None and len(self._open) >= MAX_KEYS:
            key = ("*", outcome)
            w = self._open.get(key)
        if w is None:
            self._open[key] = [now, 0, None, None]
            return [(now, outcome, login, seq, detail)]
        w[1] += 1
        if isinstance(seq, int):
            w[2] = seq if w[2] is None else min(w[2], seq)
            w[3] = seq if w[3] is None else max(w[3], seq)
        return []

    def flush(self, force=False):
        """Rows summing the windows that have ended (all of them if force)."""
        now = self.clock()
        rows = []
        for key in [k for k, w in self._open.items() if force or now - w[0] >= self.window_s]:
            start, more, lo, hi = self._open.pop(key)
            if more:
                rows.append((now, key[1], key[0], None, "%d more %s refusal(s) in %.0f s%s"
                             % (more, key[1], now - start,
                                "" if lo is None else " (seq %d..%d)" % (lo, hi))))
        return rows


class SeqWindow:
    def __init__(self, width=SEQ_WINDOW):
        self.width = width
        self._hi = {}

    def stale(self, dev, seq, lookup):
        """True if seq is more than `width` behind the newest stored;
        lookup(dev) gives the store's newest seq (or None) on first sight."""
        hi = self._hi.get(dev)
        if hi is None:
            hi = lookup(dev)
            hi = -1 if hi is None else hi
            self._hi[dev] = hi
        return seq < hi - self.width

    def stored(self, dev, seq):
        if seq > self._hi.get(dev, -1):
            self._hi[dev] = seq
