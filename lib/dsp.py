"""Small integer helpers shared by the detectors (no allocation, except
zeros(), which makes their buffers)."""
from array import array


def pow2(v):
    """Smallest power of two >= v (ring sizes follow the sample rate)."""
    n = 1
    while n < v:
        n <<= 1
    return n


def median8(a, tmp):
    """Median (mean of the middle two) of the 8 ints in a, sorted into tmp."""
    for i in range(8):
        v = a[i]
        j = i
        while j > 0 and tmp[j - 1] > v:
            tmp[j] = tmp[j - 1]
            j -= 1
        tmp[j] = v
    return (tmp[3] + tmp[4]) >> 1


def zeros16(n):
    """A new array("h") of n zeros (values within +-32767), made like zeros()."""
    a = array("h", range(n))
    for i in range(n):
        a[i] = 0
    return a


def zeros(n):
    """A new array("i") of n zeros. Filled from range() so that no
    temporary is made: array("i", bytes(4 * n)) leaves a hole of 4n bytes
    between long-lived buffers, and a fragmented heap refuses later
    allocations (a qstr pool, a module) although enough bytes are free."""
    a = array("i", range(n))
    for i in range(n):
        a[i] = 0
    return a
