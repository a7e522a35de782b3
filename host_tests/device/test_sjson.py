"""The strict JSON parser the node and the host tools share (issue 19 §4):
what JSON means it reads exactly; every ambiguity an attacker could use to
make two parsers disagree is refused by name."""
import json

from devtest import raises

from firmware import sjson


def test_strict_json_reads_what_json_means():
    text = ('{"format": 1, "version": "0.7.0", "neg": -12, "zero": 0, "f": 1.5e2, "t": true, '
            '"n": null, "files": [{"path": "firmware/app.mpy", "size": 10}], "esc": '
            '"a\\"b\\\\c\\/\\n\\u00e9\\u20ac", "empty": {}, "none": [], "max": 2147483647, '
            '"min": -2147483648}')
    assert sjson.loads(text) == json.loads(text)
    assert sjson.loads(text.encode()) == json.loads(text)
    assert sjson.loads(" [1 , 2 ]\n") == [1, 2]
    assert sjson.loads('"\u00e9"') == "\u00e9"


def _refused(text):
    return str(raises(sjson.JsonError, sjson.loads, text))


def test_each_ambiguity_is_refused_by_name():
    cases = [
        ('{"version": "0.7.0", "version": "9.9.9"}', "duplicate key 'version'"),
        ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        ('{"a": NaN}', "unexpected 'N'"),
        ('{"a": Infinity}', "unexpected 'I'"),
        ('{"a": -Infinity}', "ASCII digits"),
        ('{"a": 1e999999}', "not finite"),
        ('{"a": -1e400}', "not finite"),
        ('{"counter": 2147483648}', "out of range"),
        ('{"counter": -2147483649}', "out of range"),
        ('{"counter": 99999999999999999999999}', "out of range"),
        ('{"counter": \u0661\u0662}', "unexpected"),
        ('{"counter": 1\u0662}', "expected ','"),
        ('{"counter": 012}', "leading zero"),
        ('{"counter": +1}', "unexpected '+'"),
        ('{"counter": .5}', "unexpected '.'"),
        ('{"counter": 1.}', "after '.'"),
        ('{"counter": 1e}', "exponent"),
        ('{"a": 1} x', "text after the value"),
        ('{"a": 1}{"a": 2}', "text after the value"),
        ('{"a": "x\ny"}', "control character"),
        ('{"a": "\\ud800"}', "surrogate"),
        ('{"a": "\\x41"}', "bad escape"),
        ('{"a": "\\u12g4"}', "bad \\u escape"),
        ('{"a": "open', "unterminated string"),
        ('{"a" 1}', "expected ':'"),
        ('{"a": 1,}', "expected a key"),
        ('[1, 2,]', "unexpected ']'"),
        ('{a: 1}', "expected a key"),
        ("{'a': 1}", "expected a key"),
        ("", "unexpected end"),
        ("[" * 17 + "]" * 17, "nested deeper"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ]
    for text, why in cases:
        e = _refused(text)
        assert e.startswith("json: ") and why in e, (text, e)
    assert sjson.loads("[" * 16 + "]" * 16)  # the documented depth is accepted


def test_a_buffer_is_parsed_in_place_without_a_copy_of_the_text():
    """The OTA path hands it a memoryview of the signed envelope: on a
    fragmented heap there may be no hole the size of the text."""
    text = bytearray(b'{"version": "0.7.0", "files": []}' + b" " * 6000)
    assert sjson.loads(memoryview(text)) == {"version": "0.7.0", "files": []}
    from devtest import ON_MICROPYTHON
    if ON_MICROPYTHON:
        import gc
        gc.collect()
        gc.disable()
        try:
            before = gc.mem_alloc()
            sjson.loads(memoryview(text))
            grew = gc.mem_alloc() - before
        finally:
            gc.enable()
        assert grew < 1500, grew  # the old parser's str copy alone was 6 KB


def test_spans_keep_an_array_as_offsets_and_still_check_every_element():
    text = ('{"version": "1.0.0", "files": [ {"path": "a", "size": 1} ,{"path": "b", "size": 2}],'
            ' "deep": {"files": [1]}}').encode()
    d = sjson.loads(text, spans="files")
    assert d["deep"] == {"files": [1]}  # only the top-level object's key
    got = [sjson.loads(memoryview(text)[s:e]) for s, e in d["files"]]
    assert got == json.loads(text)["files"]
    assert sjson.loads(b'{"files": []}', spans="files") == {"files": []}
    assert sjson.loads(b'{"files": 3}', spans="files") == {"files": 3}  # the schema refuses it
    # an element is parsed as strictly as the rest: refused by name, with its offset
    assert raises(sjson.JsonError, sjson.loads, b'{"files": [{"path": "a", "path": "b"}]}',
                  spans="files").args[0] == "json: duplicate key 'path' at offset 25"
    assert raises(sjson.JsonError, sjson.loads, b'{"files": [1, 01]}', spans="files")
    assert raises(sjson.JsonError, sjson.loads, b'{"files": [1 2]}', spans="files")
    assert raises(sjson.JsonError, sjson.loads, b'{"files": [1], "files": []}', spans="files")
