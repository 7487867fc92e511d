"""One SIP OPTIONS over UDP and the status of its answer: is the edge (or a worker) up?"""

from __future__ import annotations

import asyncio
import secrets as _random
from typing import Any


def _options(host: str, port: int, call_id: str) -> bytes:
    # RFC 3261 §11: OPTIONS to the server itself; rport (RFC 3581) brings the answer back here.
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:9;branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{host}>;tag={call_id}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}@rufweiche\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        parts = data.split(b" ", 2)
        is_reply = len(parts) > 1 and parts[0] == b"SIP/2.0" and parts[1].isdigit()
        if is_reply and not self.status.done():
            self.status.set_result(int(parts[1]))


async def options_ping(
    host: str, port: int, wait: float = 0.5, source: str = "127.0.0.1"
) -> int | None:
    """Send one OPTIONS over UDP; the status code of the answer, or None on no answer."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Reply, local_addr=(source, 0), remote_addr=(host, port)
    )
    try:
        transport.sendto(_options(host, port, _random.token_hex(8)))
        async with asyncio.timeout(wait):
            return await proto.status
    except TimeoutError:
        return None
    finally:
        transport.close()
