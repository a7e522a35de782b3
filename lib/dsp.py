"""Small integer helpers shared by the detectors (no allocation)."""


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
