"""Strict JSON: the one parser the node and the host tools use for what an
attacker may write (OTA manifests, security events in telemetry), so two
parsers can never disagree about a signed text.

    from firmware import sjson
    d = sjson.loads(text_or_bytes)       # JsonError (a ValueError) if not strict JSON

Guarantees: loads() accepts RFC 8259 JSON and refuses by name, with the
offset: a duplicate key in an object ("duplicate key 'version'"), a number
that is not ASCII digits in JSON's grammar (no NaN, Infinity, +1, 01, .5,
non-ASCII digits), an integer outside -2**31 .. 2**31-1, a float that is
not finite (1e999999), control characters and lone surrogates in
strings, nesting deeper than MAX_DEPTH, text after the value, and bytes
that are not UTF-8. It raises JsonError and nothing else.
Non-guarantees: no schema - callers check fields, types and ranges; the
whole text is held in memory (callers cap its size first).
Costs: pure Python, a character at a time (an 8 KB manifest is parsed on
the OTA path only; the running node never imports this module).
"""
from micropython import const

MAX_DEPTH = const(16)
INT_MAX = const(0x7FFFFFFF)
_NUM_MAX = const(32)  # characters of one number
_ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEXD = "0123456789abcdefABCDEF"


class JsonError(ValueError):
    pass


def _err(why, i):
    """The JsonError for offset `i`; the caller raises it."""
    return JsonError("json: %s at offset %d" % (why, i))


def loads(text):
    """The value of the strict JSON `text` (str, or bytes as UTF-8)."""
    if not isinstance(text, str):
        try:
            text = str(text, "utf-8")  # one copy, from any buffer (a memoryview too)
        except (UnicodeError, TypeError):  # not UTF-8; not a buffer (MemoryError goes on)
            raise JsonError("json: not UTF-8 text")
    v, i = _value(text, 0, MAX_DEPTH)
    i = _ws(text, i)
    if i != len(text):
        raise _err("text after the value", i)
    return v


def _ws(s, i):
    n = len(s)
    while i < n and s[i] in " \t\n\r":
        i += 1
    return i


def _value(s, i, depth):
    i = _ws(s, i)
    if i >= len(s):
        raise _err("unexpected end", i)
    c = s[i]
    if c == "{" or c == "[":
        if depth <= 0:
            raise _err("nested deeper than %d" % MAX_DEPTH, i)
        return (_object if c == "{" else _array)(s, i + 1, depth - 1)
    if c == '"':
        return _string(s, i + 1)
    if c == "-" or "0" <= c <= "9":
        return _number(s, i)
    for word, val in (("true", True), ("false", False), ("null", None)):
        if s[i:i + len(word)] == word:
            return val, i + len(word)
    raise _err("unexpected %r" % c, i)


def _object(s, i, depth):
    d = {}
    i = _ws(s, i)
    if i < len(s) and s[i] == "}":
        return d, i + 1
    while True:
        i = _ws(s, i)
        if i >= len(s) or s[i] != '"':
            raise _err("expected a key", i)
        at = i
        k, i = _string(s, i + 1)
        if k in d:
            raise _err("duplicate key %r" % k, at)
        i = _ws(s, i)
        if i >= len(s) or s[i] != ":":
            raise _err("expected ':'", i)
        d[k], i = _value(s, i + 1, depth)
        i = _ws(s, i)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            return d, i + 1
        else:
            raise _err("expected ',' or '}'", i)


def _array(s, i, depth):
    a = []
    i = _ws(s, i)
    if i < len(s) and s[i] == "]":
        return a, i + 1
    while True:
        v, i = _value(s, i, depth)
        a.append(v)
        i = _ws(s, i)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "]":
            return a, i + 1
        else:
            raise _err("expected ',' or ']'", i)


def _string(s, i):
    parts = []
    n = len(s)
    j = i
    while True:
        if j >= n:
            raise _err("unterminated string", i)
        c = s[j]
        if c == '"':
            parts.append(s[i:j])
            return "".join(parts), j + 1
        if c == "\\":
            parts.append(s[i:j])
            e = s[j + 1:j + 2]
            if e == "u":
                h = s[j + 2:j + 6]
                if len(h) != 4 or not all(x in _HEXD for x in h):
                    raise _err("bad \\u escape", j)
                cp = int(h, 16)
                if 0xD800 <= cp <= 0xDFFF:
                    raise _err("surrogate \\u escape", j)
                parts.append(chr(cp))
                j += 6
            elif e and e in _ESC:
                parts.append(_ESC[e])
                j += 2
            else:
                raise _err("bad escape", j)
            i = j
        elif c < " ":
            raise _err("control character in a string", j)
        else:
            j += 1


def _digits(s, j):
    n = len(s)
    k = j
    while k < n and "0" <= s[k] <= "9":
        k += 1
    return k


def _number(s, i):
    j = i + 1 if s[i] == "-" else i
    k = _digits(s, j)
    if k == j:
        raise _err("a number needs ASCII digits", j)
    if s[j] == "0" and k - j > 1:
        raise _err("leading zero", j)
    frac = False
    if k < len(s) and s[k] == ".":
        m = _digits(s, k + 1)
        if m == k + 1:
            raise _err("digits needed after '.'", k)
        k, frac = m, True
    if k < len(s) and s[k] in "eE":
        m = k + 1
        if m < len(s) and s[m] in "+-":
            m += 1
        e = _digits(s, m)
        if e == m:
            raise _err("digits needed in the exponent", k)
        k, frac = e, True
    tok = s[i:k]
    if len(tok) > _NUM_MAX:
        raise _err("number of %d characters" % len(tok), i)
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
