"""THE free-port helper of tests and bench: :func:`free_port`.

A port is free "a moment ago" only: another process may take it before the peer binds it
(other sessions run their own peers on this machine), so never assume 1883/5060 are free
and let the peer that fails to bind be restarted on a new port where that matters.
"""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"

UDP = socket.SOCK_DGRAM
TCP = socket.SOCK_STREAM


def free_port(
    *,
    udp: bool = True,
    tcp: bool = False,
    span: int = 1,
    even: bool = False,
    low: bool = False,
    host: str = LOOPBACK,
) -> int:
    """A port P such that P .. P+span-1 are free for each kind asked for (UDP, TCP or both).

    The kernel picks P (bind to port 0) unless ``low``: then P is drawn below the ephemeral
    range, for a TCP port a peer will listen on later (connecting to an ephemeral port that
    nobody listens on yet can connect the socket to itself, TCP simultaneous open: seen
    with baresip's ctrl_tcp). ``even`` gives an even P (RTP on P, RTCP on P+1).

    ``free_port()`` UDP (a SIPp or worker SIP port); ``free_port(udp=False, tcp=True)`` TCP
    (HTTP, MQTT); ``free_port(tcp=True)`` both (the edge listens on both);
    ``free_port(span=2, even=True)`` an RTP+RTCP pair; ``free_port(span=3, even=True)``
    SIPp's media ports (it binds the media port and the one two above it).
    """
    kinds = [kind for kind, wanted in ((UDP, udp), (TCP, tcp)) if wanted]
    if not kinds or span < 1:
        raise ValueError("free_port needs udp or tcp and a span of at least 1")
    for _ in range(200):
        port = random.randrange(10000, 32000) if low else _kernel_port(kinds[0], host)
        if even:
            port &= ~1
        if _all_free(host, port, span, kinds):
            return port
    raise RuntimeError(f"no free port on {host} (span {span}, kinds {kinds})")


def _kernel_port(kind: socket.SocketKind, host: str) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _all_free(host: str, port: int, span: int, kinds: list[socket.SocketKind]) -> bool:
    socks: list[socket.socket] = []
    try:
        for offset in range(span):
            for kind in kinds:
                sock = socket.socket(socket.AF_INET, kind)
                socks.append(sock)
                sock.bind((host, port + offset))
        return True
    except OSError:
        return False
    finally:
        for sock in socks:
            sock.close()
