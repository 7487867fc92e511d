"""switch/addresses.py: the one host:port parser of supervisor, worker and edge."""

from __future__ import annotations

import pytest

from switch.addresses import join_host_port, parse_host_port, strip_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5060", ("127.0.0.1", 5060)),
        ("[::1]:5060", ("::1", 5060)),
        ("[2001:db8::7]:0", ("2001:db8::7", 0)),
        ("office:65535", ("office", 65535)),
        (" 10.0.0.1:5070 ", ("10.0.0.1", 5070)),
    ],
)
def test_parses(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected
    assert parse_host_port(join_host_port(*expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:", "the port is not a number"),
        ("127.0.0.1:65536", "the port is not a number from 0 to 65535"),
        ("127.0.0.1:-1", "the port is not a number"),
        ("::1:5060", "write an IPv6 address in brackets"),
        ("[::1:5060", r"'\[' without '\]'"),
        ("[::1]5060", "expected ':PORT' after ']'"),
        ("[office]:5060", "brackets are only for IPv6"),
        (":5060", "the host is missing"),
    ],
)
def test_refuses_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_host_port(text)
    assert repr(text) in str(info.value)


def test_default_port_and_empty_host() -> None:
    assert parse_host_port("office", 5060) == ("office", 5060)
    assert parse_host_port("[::1]", 5060) == ("::1", 5060)
    assert parse_host_port(":5070", allow_empty_host=True) == ("", 5070)


def test_strip_port_keeps_what_is_not_an_address() -> None:
    assert strip_port("198.51.100.7:5060") == "198.51.100.7"
    assert strip_port("[::1]:5060") == "[::1]"
    assert strip_port("office") == "office"
    assert strip_port("host:abc") == "host:abc"
