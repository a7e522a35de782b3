"""Preallocated ring of ints addressed by absolute sample number.

    r = Ring(1024)          # capacity, a power of two
    r.push(v)               # the producer (one writer)
    if r.head - cursor > r.cap: ...   # a consumer fell behind: overrun
    v = r.get(cursor)       # any sample with head - cap <= i < head
    # a hot producer may write r.buf[(r.head + k) & r.mask] for k < n, then
    # r.head += n (the same as n push() calls, without n method calls)

Guarantees: push() and get() allocate nothing; the newest `cap` samples
are kept. Non-guarantees: no locking (one producer; consumers read from
the same thread or tolerate a sample being overwritten while they read);
`head` is a small int for 2**30 samples (62 days at 200 sps).
"""
from dsp import zeros


class Ring:
    def __init__(self, capacity):
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError("Ring capacity must be a power of two, got %r" % (capacity,))
        self.buf = zeros(capacity)
        self.cap = capacity
        self.mask = capacity - 1
        self.head = 0  # samples written so far = absolute number of the next one

    def push(self, v):
        self.buf[self.head & self.mask] = v
        self.head += 1

    def get(self, i):
        return self.buf[i & self.mask]

    def oldest(self):
        """Absolute number of the oldest sample still held."""
        return self.head - self.cap if self.head > self.cap else 0
