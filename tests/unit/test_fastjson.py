"""cni.fastjson must decode and encode exactly as the json package does, and refuse what it refuses."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cni import fastjson

REPO = Path(__file__).resolve().parents[2]

DOCUMENTS = [
    '{"cniVersion": "1.1.0", "name": "n", "plugins": [{"type": "bridge", "mtu": 1500, "x": null}]}',
    '  {"a": [1, 2.5, -3e2, true, false, null, "\\u00e9\\n\\"q\\""]}  \n',
    '[]', '{}', '"text"', '0', '-0.0', '12345678901234567890', '"\\ud83d\\ude00"', '1.7976931348623157e308',
    '{"dup": 1, "dup": 2}', '[1, [2, [3, {"deep": [4]}]]]',
]

# What the json package takes and Go's decoder refuses: the non-JSON literals, and numbers past
# float64 that json would read as infinity.
NOT_FINITE = ['NaN', '[Infinity, -Infinity]', '{"a": [1, -Infinity]}', '1E400', '-1e999', '[0.5, 2e308]',
              '{"mtu": 1' + '0' * 400 + '}', '-' + '9' * 320]  # integers past float64, as Go refuses them

BAD = ['', ' ', 'nope', '{"a": 1', '{"a": 1}}', '[1,]', "{'a': 1}", '{"a" 1}', '[1] [2]', '"\x01"',
       '{"a": 01}', '\ufeff{}']


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_decodes_as_json(doc):
    ours, theirs = fastjson.loads(doc), json.loads(doc)
    assert json.dumps(ours) == json.dumps(theirs)
    assert fastjson.loads(doc.encode()) == ours or (isinstance(ours, float) and math.isnan(ours))


@pytest.mark.parametrize("doc", NOT_FINITE)
def test_refuses_what_is_no_finite_number(doc):
    with pytest.raises(ValueError):
        fastjson.loads(doc)
    with pytest.raises(ValueError):
        fastjson.loads(doc.encode())


def test_refuses_nesting_deeper_than_the_stack_as_malformed():
    with pytest.raises(fastjson.TooDeep):
        fastjson.loads("[" * 100000 + "]" * 100000)


@pytest.mark.parametrize("doc", BAD)
def test_refuses_what_json_refuses(doc):
    with pytest.raises(ValueError):
        json.loads(doc)
    with pytest.raises(ValueError):
        fastjson.loads(doc)


def test_refuses_invalid_utf8():
    with pytest.raises(ValueError):
        fastjson.loads(b'{"a": "\xff"}')


@pytest.mark.parametrize("doc", DOCUMENTS + NOT_FINITE)
def test_encodes_as_json(doc):
    value = json.loads(doc)
    assert fastjson.dumps(value) == json.dumps(value)


def test_encodes_tuples_unicode_and_refuses_objects():
    value = {"t": (1, 2), "é": "ü\u2028", 3: 4.0, "f": 1e-7}
    assert fastjson.dumps(value) == json.dumps(value)
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()})


def test_describes_errors_without_json_loaded():
    """CPython 3.11's C scanner needs json.decoder loaded to raise; a fresh process has none."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from cni import fastjson\n"
            "try:\n    fastjson.loads('{\"a\": 1')\nexcept ValueError as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("JSONDecodeError Expecting"), out.stdout + out.stderr


def test_does_not_import_json_or_re():
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from cni import fastjson; "
            "fastjson.dumps(fastjson.loads('{\"a\": [1, 2]}')); "
            "print(any(m in sys.modules for m in ('json', 're', 'enum')))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
