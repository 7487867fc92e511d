"""Per-leg figures from a real rtpengine (issue 16): ng ``query`` by Call-ID, also after
``delete`` (within delete_delay), for a bypassed call pjsua2 no longer sees.

The test drives rtpengine itself over ng (offer/answer as Kamailio's module would), sends
RTP from both sides through it (one packet of side A never sent) and reads the figures.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import struct
from pathlib import Path

import pytest

from switch.edge.relaystats import bdecode, bencode, ng_command, ng_query
from switch.edge.rtpengine import MediaRelay, MediaRelaySettings
from tests.helpers.ports import free_port

pytestmark = [
    pytest.mark.peer,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not shutil.which("rtpengine"), reason="needs rtpengine-daemon"),
]


def _sdp(port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )


def test_bencode_round_trip() -> None:
    value = {"command": "query", "n": 3, "l": ["a", 1], "d": {"x": b"\xff"}}
    assert bdecode(bencode(value)) == {
        "command": "query",
        "n": 3,
        "l": ["a", 1],
        "d": {"x": b"\xff"},
    }
    with pytest.raises(ValueError, match="after the value"):
        bdecode(b"i1ee")


async def _call(tmp_path: Path) -> None:
    base = free_port(span=40, even=True)
    settings = MediaRelaySettings(
        mode="on", ng_listen=f"127.0.0.1:{free_port()}", port_min=base, port_max=base + 39
    )
    caller, callee = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    async with MediaRelay(settings, public="127.0.0.1", log=tmp_path / "rtpengine.log"):
        ng = settings.ng_listen
        try:
            for s in (caller, callee):
                s.bind(("127.0.0.1", 0))
            offer = await ng_command(
                ng,
                {
                    "command": "offer",
                    "call-id": "c1",
                    "from-tag": "a",
                    "sdp": _sdp(caller.getsockname()[1]),
                },
            )
            answer = await ng_command(
                ng,
                {
                    "command": "answer",
                    "call-id": "c1",
                    "from-tag": "a",
                    "to-tag": "b",
                    "sdp": _sdp(callee.getsockname()[1]),
                },
            )
            to_caller = int(re.search(r"m=audio (\d+)", offer["sdp"]).group(1))  # type: ignore[union-attr]
            to_callee = int(re.search(r"m=audio (\d+)", answer["sdp"]).group(1))  # type: ignore[union-attr]
            for n in range(60):
                if n != 30:
                    caller.sendto(
                        struct.pack("!BBHII", 0x80, 0, n, n * 160, 1) + b"\xff" * 160,
                        ("127.0.0.1", to_callee),
                    )
                callee.sendto(
                    struct.pack("!BBHII", 0x80, 0, n, n * 160, 2) + b"\xff" * 160,
                    ("127.0.0.1", to_caller),
                )
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.3)
            live = await ng_query(ng, "c1")
            await ng_command(ng, {"command": "delete", "call-id": "c1", "from-tag": "a"})
            after = await ng_query(ng, "c1")  # the edge's BYE deleted it: still there
            unknown = await ng_query(ng, "no-such-call")
        finally:
            caller.close()
            callee.close()
    got = {tag: (s.rx_packets, s.tx_packets) for tag, s in live.items()}
    assert got == {"a": (59, 60), "b": (60, 59)}, live
    assert live["a"].codec == "PCMU"
    assert after["a"].rx_packets == 59, after
    assert unknown == {}


def test_query_gives_each_sides_packets_also_after_delete(tmp_path: Path) -> None:
    asyncio.run(_call(tmp_path))
