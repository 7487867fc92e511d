"""PROTOS-like malformed INVITEs, generated here (issue 14 item 7): each one breaks the SIP
grammar in another place, so that Kamailio's parser (not the script) refuses it."""

from __future__ import annotations

import socket
import time


def malformed_invite(index: int, target: tuple[str, int], local: tuple[str, int]) -> bytes:
    """The ``index``-th malformed INVITE: five kinds in turn, some of them large."""
    host, port = target
    ruri = f"sip:+4930123456@{host}:{port}"
    via = f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKbad{index};rport"
    head = [
        f"INVITE {ruri} SIP/2.0",
        via,
        "Max-Forwards: 70",
        f"From: <sip:protos@192.0.2.66>;tag=bad{index}",
        f"To: <{ruri}>",
        f"Call-ID: bad{index}@protos",
        "CSeq: 1 INVITE",
        "Contact: <sip:protos@192.0.2.66>",
    ]
    kind = index % 5
    if kind == 0:  # a header line without a colon
        head.insert(3, "This line is no header at all " + "x" * 200)
    elif kind == 1:  # a huge Content-Type
        head.append("Content-Type: application/" + "A" * 20_000)
    elif kind == 2:  # a CSeq that is no number
        head[6] = "CSeq: one-two-three INVITE"
    elif kind == 3:  # a Via that is no Via
        head[1] = "Via: SIP/2.0/UDP " + "%" * 3000
    else:  # a From that is no name-addr, and a huge Call-ID
        head[3] = "From: <<<" + "B" * 8000
        head[5] = "Call-ID: " + "C" * 8000
    return ("\r\n".join([*head, "Content-Length: 0", "", ""])).encode()


def send_malformed(
    target: tuple[str, int], count: int, *, source: str = "127.0.0.1", rate: float = 200
) -> int:
    """Send ``count`` malformed INVITEs from ``source`` at ``rate``/s; how many were sent."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local = sock.getsockname()
        start = time.monotonic()
        for index in range(count):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(malformed_invite(index, target, local), target)
            sent += 1
    return sent
