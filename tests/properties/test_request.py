"""Request and environment parsing: whatever the runtime sends, a Request or a CNI error, never a crash."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cni.contract import args as cni_args
from cni.contract import request
from cni.contract.errors import CNIError

from .strategies import ENV_TEXT, JSON, NOT_FINITE, TEXT_WITH_SURROGATE, planted

VERBS = st.sampled_from([*request.VERBS, "", "add", "GET", "FROB"])
VAR = st.one_of(st.none(), ENV_TEXT, st.sampled_from(["eth0", "/var/run/netns/x", "abc-123", "/opt/cni/bin"]))


@settings(max_examples=200, deadline=None)
@given(command=VERBS, cid=VAR, netns=VAR, ifname=VAR, path=VAR)
def test_parse_env_gives_a_request_or_code_4(command, cid, netns, ifname, path):
    env = {k: v for k, v in (("CNI_COMMAND", command), ("CNI_CONTAINERID", cid), ("CNI_NETNS", netns),
                              ("CNI_IFNAME", ifname), ("CNI_PATH", path)) if v is not None}
    try:
        req = request.parse_env(env)
    except CNIError as e:
        assert e.code == 4
        return
    assert req.command == command in request.VERBS
    if command in ("ADD", "CHECK") and req.ifname:
        # what a created link's name may be: the kernel's rules, no template, UTF-8 only
        raw = req.ifname.encode("utf-8", "surrogateescape")
        assert len(raw) <= 15 and b"%" not in raw and b"/" not in raw and b":" not in raw
        raw.decode("utf-8")


@settings(max_examples=200, deadline=None)
@given(name=ENV_TEXT)
def test_del_takes_every_name_add_takes(name):
    """DEL refuses no name that ADD accepts (so what ADD reserved DEL can release)."""
    if request.check_ifname(name, creating=True) is None:
        assert request.check_ifname(name) is None


@settings(max_examples=150, deadline=None)
@given(raw=st.text(max_size=60))
def test_cni_args_parse_or_code_4(raw):
    try:
        parsed = cni_args.parse_cni_args(raw, frozenset({"IP", "MAC", "IgnoreUnknown"}))
    except CNIError as e:
        assert e.code == 4
        return
    assert set(parsed) <= {"IP", "MAC", "IgnoreUnknown"}


@settings(max_examples=150, deadline=None)
@given(value=JSON, depth=st.integers(0, 120))
def test_stdin_decodes_to_an_object_or_code_6(value, depth):
    doc = {"cniVersion": "1.0.0", "name": "n", "x": value}
    for _ in range(depth):
        doc = {"x": doc} if depth % 2 else [doc]  # type: ignore[assignment]
    stdin = json.dumps(doc).encode()
    req = request.Request(command="ADD")
    try:
        config = request.parse_stdin(req, stdin)
    except CNIError as e:
        assert e.code == 6
        assert not isinstance(doc, dict) or request.inspect(json.loads(stdin))[0] > request.MAX_DEPTH
        return
    assert isinstance(config, dict) and request.inspect(config)[0] <= request.MAX_DEPTH


@settings(max_examples=150, deadline=None)
@given(stdin=st.binary(max_size=80))
def test_arbitrary_bytes_on_stdin_are_code_6_or_an_object(stdin):
    try:
        config = request.parse_stdin(request.Request(command="ADD"), stdin)
    except CNIError as e:
        assert e.code in (6,)
        return
    assert isinstance(config, dict)


@settings(max_examples=150, deadline=None)
@given(raw=JSON)
def test_gc_attachments_are_a_set_of_pairs_or_code_7(raw):
    try:
        pairs = request.parse_attachments({"cni.dev/valid-attachments": raw})
    except CNIError as e:
        assert e.code == 7
        return
    assert isinstance(raw, list) or raw is None
    assert all(isinstance(c, str) and c and isinstance(i, str) and i for c, i in pairs)


@settings(max_examples=150, deadline=None)
@given(value=planted(TEXT_WITH_SURROGATE) | planted(TEXT_WITH_SURROGATE, as_key=True),
       key=st.sampled_from(["x", "name", "ipam", "runtimeConfig", "prevResult", "args"]))
def test_a_lone_surrogate_anywhere_is_code_7(value, key):
    """Go would decode it to U+FFFD; we refuse it, wherever it sits, before any plugin reads it."""
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "n", key: value}).encode()
    try:
        request.parse_stdin(request.Request(command="ADD"), stdin)
    except CNIError as e:
        assert e.code == 7 and "surrogate" in e.msg, e
        return
    raise AssertionError(f"accepted: {stdin[:200]!r}")


@settings(max_examples=150, deadline=None)
@given(value=planted(NOT_FINITE), key=st.sampled_from(["x", "mtu", "runtimeConfig", "prevResult"]))
def test_nan_and_infinity_anywhere_are_code_6(value, key):
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "n", key: value}).encode()
    try:
        request.parse_stdin(request.Request(command="ADD"), stdin)
    except CNIError as e:
        assert e.code == 6, e
        return
    raise AssertionError(f"accepted: {stdin[:200]!r}")


@settings(max_examples=150, deadline=None)
@given(value=JSON, extra=st.text(max_size=8) | TEXT_WITH_SURROGATE, nan=st.booleans())
def test_what_is_accepted_is_finite_unicode(value, extra, nan):
    """Whatever the document, an accepted config holds only text UTF-8 can carry and finite numbers,
    so every later step (paths, firewall batches, netlink, the printed answer) can take it."""
    doc = {"cniVersion": "1.0.0", "name": "n", "x": value, "y": extra, "z": float("nan") if nan else 0}
    try:
        config = request.parse_stdin(request.Request(command="ADD"), json.dumps(doc).encode())
    except CNIError as e:
        assert e.code in (6, 7)
        return
    assert not nan
    text = json.dumps(config, allow_nan=False)  # raises on a non-finite number
    text.encode("utf-8")  # raises on a lone surrogate (json.dumps escapes them: check decoded too)
    json.dumps(config, ensure_ascii=False).encode("utf-8")
