"""The fork-server channel's messages (switch/control/forking.py) round-trip and reject junk."""

from __future__ import annotations

import pytest

from switch.control import forking
from switch.errors import ControlProtocolError


@pytest.mark.parametrize(
    "message",
    [
        forking.Fork(3, ("--name", "w1", "--sip", "127.0.0.1:5070")),
        forking.Preloaded(1234, 5),
        forking.Forked(3, 4321),
        forking.ForkFailed(3, "no control socket"),
        forking.Exited(4321, -9),
    ],
)
def test_messages_round_trip(message: forking.Message) -> None:
    line = forking.encode(message)
    assert line.endswith(b"\n")
    assert forking.decode(line.strip()) == message


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"op": "spawn"}',
        b'{"op": "fork", "id": 1, "argv": [1]}',
        b'{"op": "exited", "pid": "7", "returncode": 0}',
    ],
)
def test_junk_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        forking.decode(line)
