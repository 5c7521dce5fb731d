"""CNI_ARGS parsing: libcni's LoadArgs rules, which every Go plugin applies to the same string."""

from __future__ import annotations

import pytest

from cni.contract.args import parse_cni_args
from cni.contract.errors import INVALID_ENVIRONMENT, CNIError

KNOWN = frozenset({"IP", "MAC"})


def test_empty_string_is_no_args():
    assert parse_cni_args("", KNOWN) == {}


def test_known_keys_are_returned():
    assert parse_cni_args("IP=10.1.0.9;MAC=0a:58:0a:01:00:09", KNOWN) == {
        "IP": "10.1.0.9", "MAC": "0a:58:0a:01:00:09"}


def test_empty_value_is_a_valid_pair():
    assert parse_cni_args("IP=", KNOWN) == {"IP": ""}


def test_last_of_a_repeated_key_wins():
    assert parse_cni_args("IP=10.1.0.9;IP=10.1.0.10", KNOWN) == {"IP": "10.1.0.10"}


@pytest.mark.parametrize("raw", [
    "IP",                       # no '='
    "IP=10.1.0.9;",             # trailing ';' leaves an empty pair
    ";IP=10.1.0.9",             # leading empty pair
    "IP=10.1.0.9;;MAC=x",       # empty pair in the middle
    "IP=a=b",                   # a value holding '=' splits into three parts
    "=",                        # two empty parts: an empty key, which no plugin knows
])
def test_pairs_must_split_into_exactly_two_parts(raw):
    with pytest.raises(CNIError) as exc:
        parse_cni_args(raw, KNOWN)
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_ARGS" in exc.value.msg


def test_invalid_pair_is_quoted_in_the_message():
    with pytest.raises(CNIError) as exc:
        parse_cni_args("IgnoreUnknown=1;IP=a=b", KNOWN)
    assert "IP=a=b" in exc.value.msg


def test_unknown_key_is_an_error_naming_every_unknown_pair():
    with pytest.raises(CNIError) as exc:
        parse_cni_args("K8S_POD_NAME=web;IP=10.1.0.9;K8S_POD_NAMESPACE=default", KNOWN)
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_ARGS" in exc.value.msg
    assert "K8S_POD_NAME=web" in exc.value.msg
    assert "K8S_POD_NAMESPACE=default" in exc.value.msg


def test_keys_are_case_sensitive():
    with pytest.raises(CNIError) as exc:
        parse_cni_args("ip=10.1.0.9", KNOWN)
    assert "ip=10.1.0.9" in exc.value.msg


@pytest.mark.parametrize("flag", ["1", "true", "True", "TRUE", "tRuE"])
def test_ignore_unknown_true_spellings(flag):
    raw = f"IgnoreUnknown={flag};K8S_POD_NAME=web;IP=10.1.0.9"
    assert parse_cni_args(raw, KNOWN) == {"IP": "10.1.0.9"}


@pytest.mark.parametrize("position", ["first", "last"])
def test_ignore_unknown_anywhere_in_the_string(position):
    raw = "IgnoreUnknown=1;FOO=bar" if position == "first" else "FOO=bar;IgnoreUnknown=1"
    assert parse_cni_args(raw, KNOWN) == {}


@pytest.mark.parametrize("flag", ["0", "false", "False"])
def test_ignore_unknown_false_keeps_strictness(flag):
    with pytest.raises(CNIError) as exc:
        parse_cni_args(f"IgnoreUnknown={flag};FOO=bar", KNOWN)
    assert "FOO=bar" in exc.value.msg
    assert parse_cni_args(f"IgnoreUnknown={flag};IP=x", KNOWN) == {"IP": "x"}


@pytest.mark.parametrize("flag", ["yes", "", "2", "on"])
def test_ignore_unknown_with_a_non_boolean_value_is_an_error(flag):
    with pytest.raises(CNIError) as exc:
        parse_cni_args(f"IgnoreUnknown={flag}", KNOWN)
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "IgnoreUnknown" in exc.value.msg


def test_ignore_unknown_key_is_case_sensitive():
    """`ignoreunknown=1` is itself an unknown key, so strictness stays on."""
    with pytest.raises(CNIError) as exc:
        parse_cni_args("ignoreunknown=1;FOO=bar", KNOWN)
    assert "FOO=bar" in exc.value.msg


def test_containerd_style_args():
    raw = ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
           "K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=8c5f2b44-7f1e-4f50-9f0d-5b0f4d3c2a11")
    assert parse_cni_args(raw, KNOWN) == {}
    assert parse_cni_args(raw, frozenset({"K8S_POD_NAME"})) == {"K8S_POD_NAME": "web-0"}


def test_no_known_keys_still_validates_syntax():
    with pytest.raises(CNIError):
        parse_cni_args("garbage", frozenset())
    assert parse_cni_args("IgnoreUnknown=true;A=b", frozenset()) == {}
