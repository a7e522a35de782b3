"""Strict JSON: the one parser the node and the host tools use for what an
attacker may write (OTA manifests, security events in telemetry), so two
parsers can never disagree about a signed text.

    from firmware import sjson
    d = sjson.loads(text_or_bytes)       # JsonError (a ValueError) if not strict JSON
    d = sjson.loads(buf, spans="files")  # d["files"]: [(start, end), ...] of its elements
    f = sjson.loads(memoryview(buf)[start:end])   # one element, when it is needed

Guarantees: loads() accepts RFC 8259 JSON and refuses by name, with the
offset: a duplicate key in an object ("duplicate key 'version'"), a number
that is not ASCII digits in JSON's grammar (no NaN, Infinity, +1, 01, .5,
non-ASCII digits), an integer outside -2**31 .. 2**31-1, a float that is
not finite (1e999999), control characters and lone surrogates in
strings, nesting deeper than MAX_DEPTH, text after the value, and bytes
that are not UTF-8. It raises JsonError and nothing else.
spans: the top-level object's array under that key is checked like the
rest, element by element, but kept only as each element's byte offsets
(start, end) - an OTA manifest's file list costs 8 KB of objects on the
node as values, and ~0.6 KB as spans.
Non-guarantees: no schema - callers check fields, types and ranges; the
whole text is held in memory (callers cap its size first).
Costs: pure Python, a byte at a time, over the caller's buffer in place
(a memoryview of the OTA envelope: no copy of the text, so a fragmented
heap needs no 5 KB hole for it); each string is decoded (and its UTF-8
checked) on its own; offsets in errors are byte offsets. An 8 KB manifest
is parsed on the OTA path only; the running node never imports this
module.
"""
from micropython import const

MAX_DEPTH = const(16)
INT_MAX = const(0x7FFFFFFF)
_NUM_MAX = const(32)  # characters of one number
_QUOTE = const(0x22)
_BSLASH = const(0x5C)
_ESC = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r",
        0x74: "\t"}
_HEXD = b"0123456789abcdefABCDEF"


class JsonError(ValueError):
    pass


def _err(why, i):
    """The JsonError for offset `i`; the caller raises it."""
    return JsonError("json: %s at offset %d" % (why, i))


_spans = None  # loads()'s spans key while it runs


def loads(text, spans=None):
    """The value of the strict JSON `text` (str, or any buffer of UTF-8
    bytes, parsed in place). spans: see the module's docstring."""
    global _spans
    if isinstance(text, str):
        text = text.encode()
    try:
        b = memoryview(text)
    except TypeError:  # not a buffer
        raise JsonError("json: not UTF-8 text")
    _spans = spans
    try:
        v, i = _value(b, 0, MAX_DEPTH)
    finally:
        _spans = None
    i = _ws(b, i)
    if i != len(b):
        raise _err("text after the value", i)
    return v


def _ws(b, i):
    n = len(b)
    while i < n and b[i] in (0x20, 0x09, 0x0A, 0x0D):
        i += 1
    return i


def _text(b, i, j):
    """b[i:j] as str: the UTF-8 of one string or number, checked."""
    try:
        return str(b[i:j], "utf-8")
    except UnicodeError:
        raise _err("not UTF-8 text", i)


def _value(b, i, depth):
    i = _ws(b, i)
    if i >= len(b):
        raise _err("unexpected end", i)
    c = b[i]
    if c == 0x7B or c == 0x5B:  # { [
        if depth <= 0:
            raise _err("nested deeper than %d" % MAX_DEPTH, i)
        return (_object if c == 0x7B else _array)(b, i + 1, depth - 1)
    if c == _QUOTE:
        return _string(b, i + 1)
    if c == 0x2D or 0x30 <= c <= 0x39:
        return _number(b, i)
    for word, val in ((b"true", True), (b"false", False), (b"null", None)):
        if bytes(b[i:i + len(word)]) == word:
            return val, i + len(word)
    raise _err(("unexpected %r" % chr(c)) if c < 0x80 else "unexpected byte 0x%02x" % c, i)


def _object(b, i, depth):
    d = {}
    i = _ws(b, i)
    if i < len(b) and b[i] == 0x7D:  # }
        return d, i + 1
    while True:
        i = _ws(b, i)
        if i >= len(b) or b[i] != _QUOTE:
            raise _err("expected a key", i)
        at = i
        k, i = _string(b, i + 1)
        if k in d:
            raise _err("duplicate key %r" % k, at)
        i = _ws(b, i)
        if i >= len(b) or b[i] != 0x3A:  # :
            raise _err("expected ':'", i)
        if _spans is not None and k == _spans and depth == MAX_DEPTH - 1:
            d[k], i = _array_spans(b, i + 1, depth)
        else:
            d[k], i = _value(b, i + 1, depth)
        i = _ws(b, i)
        if i < len(b) and b[i] == 0x2C:  # ,
            i += 1
        elif i < len(b) and b[i] == 0x7D:
            return d, i + 1
        else:
            raise _err("expected ',' or '}'", i)


def _array(b, i, depth, spans=False):
    """The array's values, or with spans its elements' (start, end) - each
    parsed and checked, then dropped."""
    a = []
    i = _ws(b, i)
    if i < len(b) and b[i] == 0x5D:  # ]
        return a, i + 1
    while True:
        start = i = _ws(b, i)
        v, i = _value(b, i, depth)
        a.append((start, i) if spans else v)
        i = _ws(b, i)
        if i < len(b) and b[i] == 0x2C:
            i += 1
        elif i < len(b) and b[i] == 0x5D:
            return a, i + 1
        else:
            raise _err("expected ',' or ']'", i)


def _array_spans(b, i, depth):
    """An array (the top-level object's `spans` key) as [(start, end)] of
    its elements, each parsed and checked, then dropped."""
    i = _ws(b, i)
    if i >= len(b) or b[i] != 0x5B:  # [
        return _value(b, i, depth)  # not an array: an ordinary value (the caller's schema refuses it)
    return _array(b, i + 1, depth - 1, True)


def _string(b, i):
    parts = []
    n = len(b)
    j = i
    while True:
        if j >= n:
            raise _err("unterminated string", i)
        c = b[j]
        if c == _QUOTE:
            parts.append(_text(b, i, j))
            return "".join(parts), j + 1
        if c == _BSLASH:
            parts.append(_text(b, i, j))
            e = b[j + 1] if j + 1 < n else -1
            if e == 0x75:  # u
                h = bytes(b[j + 2:j + 6])
                if len(h) != 4 or not all(x in _HEXD for x in h):
                    raise _err("bad \\u escape", j)
                cp = int(h, 16)
                if 0xD800 <= cp <= 0xDFFF:
                    raise _err("surrogate \\u escape", j)
                parts.append(chr(cp))
                j += 6
            elif e in _ESC:
                parts.append(_ESC[e])
                j += 2
            else:
                raise _err("bad escape", j)
            i = j
        elif c < 0x20:
            raise _err("control character in a string", j)
        else:
            j += 1


def _digits(b, j):
    n = len(b)
    k = j
    while k < n and 0x30 <= b[k] <= 0x39:
        k += 1
    return k


def _number(b, i):
    j = i + 1 if b[i] == 0x2D else i
    k = _digits(b, j)
    if k == j:
        raise _err("a number needs ASCII digits", j)
    if b[j] == 0x30 and k - j > 1:
        raise _err("leading zero", j)
    frac = False
    n = len(b)
    if k < n and b[k] == 0x2E:  # .
        m = _digits(b, k + 1)
        if m == k + 1:
            raise _err("digits needed after '.'", k)
        k, frac = m, True
    if k < n and b[k] in (0x65, 0x45):  # e E
        m = k + 1
        if m < n and b[m] in (0x2B, 0x2D):
            m += 1
        e = _digits(b, m)
        if e == m:
            raise _err("digits needed in the exponent", k)
        k, frac = e, True
    if k - i > _NUM_MAX:
        raise _err("number of %d characters" % (k - i), i)
    tok = _text(b, i, k)
    if frac:
        v = float(tok)
        if v - v != 0:  # inf or nan
            raise _err("number %s is not finite" % tok, i)
        return v, k
    if len(tok) > 11:
        raise _err("integer %s out of range" % tok[:20], i)
    v = int(tok)
    if not -INT_MAX - 1 <= v <= INT_MAX:
        raise _err("integer %s out of range" % tok, i)
    return v, k
