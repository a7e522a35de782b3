"""RSASSA-PSS signature verification (RFC 8017 section 8.1.2) with SHA-256,
MGF1-SHA256 and a 32-byte salt: the scheme ESP-IDF Secure Boot v2 and
`espsecure` sign with, so one RSA-3072 key pipeline serves both.

    import rsapss
    ok = rsapss.verify(n, sig, hashlib.sha256(msg).digest())   # e = 65537

Pure MicroPython: the modular exponentiation is the VM's big-int
`pow(s, 65537, n)` (17 multiplications), everything else is SHA-256 and
byte compares.

Guarantees: returns True only for a signature whose PSS encoding is
well-formed under `n` with exactly SALT_LEN salt bytes; wrong length, s >= n,
any padding defect or a hash mismatch return False (never raise).
Non-guarantees: not constant-time (it handles public data only); does not
check that `n` is a sound key - the key comes from the signed config.
"""
import hashlib

from micropython import const

SALT_LEN = const(32)
_H = const(32)


def mgf1(seed, length):
    """MGF1 with SHA-256: `length` mask bytes from `seed`."""
    out = bytearray()
    c = 0
    while len(out) < length:
        h = hashlib.sha256(seed)
        h.update(bytes((c >> 24 & 255, c >> 16 & 255, c >> 8 & 255, c & 255)))
        out.extend(h.digest())
        c += 1
    return out[:length]


def verify(n, sig, m_hash, e=65537):
    """True if `sig` (bytes, the modulus length) is a valid PSS signature of
    the SHA-256 digest `m_hash` under the public key (n, e)."""
    k = len(sig)
    if k < 2 or len(m_hash) != _H:
        return False
    top = n >> (8 * (k - 1))
    if not 0 < top < 256:
        return False
    mod_bits = 8 * (k - 1)
    while top:
        mod_bits += 1
        top >>= 1
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    em = pow(s, e, n).to_bytes(k, "big")
    if k > em_len:  # modulus length a multiple of 8: EM is one byte shorter
        if em[0]:
            return False
        em = em[1:]
    if em_len < _H + SALT_LEN + 2 or em[-1] != 0xBC:
        return False
    db_len = em_len - _H - 1
    h = em[db_len:db_len + _H]
    top = 0xFF & (0xFF << (8 - (8 * em_len - em_bits)))  # bits above emBits
    if em[0] & top:
        return False
    db = mgf1(h, db_len)
    for i in range(db_len):
        db[i] ^= em[i]
    db[0] &= ~top & 0xFF
    pad = db_len - SALT_LEN - 1
    for i in range(pad):
        if db[i]:
            return False
    if db[pad] != 1:
        return False
    m2 = hashlib.sha256(b"\x00" * 8)
    m2.update(m_hash)
    m2.update(db[pad + 1:])
    return m2.digest() == h
