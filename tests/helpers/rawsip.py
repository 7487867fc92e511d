"""SIP by hand over UDP: one request and its reply, OPTIONS pings, a malformed INVITE."""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass

from tests.helpers.ports import LOOPBACK


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    @property
    def status_line(self) -> str:
        return self.text.split("\r\n", 1)[0]


def sip_request(
    peer: tuple[str, int],
    method: str = "OPTIONS",
    ruri: str | None = None,
    *,
    source: str = LOOPBACK,
    from_uri: str = "sip:probe@192.0.2.10",
    user_agent: str | None = None,
    extra: str = "",
    timeout: float = 0.5,
) -> Reply | None:
    """One request over UDP from ``source``; the final reply (or the first reply), or None.

    A non-2xx final reply to an INVITE is ACKed (RFC 3261 §17.1.1.3).
    """
    host, port = peer
    ruri = ruri or f"sip:{host}:{port}"
    tag = secrets.token_hex(6)
    branch = f"z9hG4bK{tag}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local = sock.getsockname()
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={tag}",
            f"To: <{ruri}>",
            f"Call-ID: {tag}@test",
            f"CSeq: 1 {method}",
            f"Contact: <sip:probe@{local[0]}:{local[1]}>",
        ]
        if user_agent is not None:
            lines.append(f"User-Agent: {user_agent}")
        if extra:
            lines.append(extra)
        lines += ["Content-Length: 0", "", ""]
        sock.sendto("\r\n".join(lines).encode(), (host, port))
        deadline = time.monotonic() + timeout
        first: Reply | None = None
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(max(0.01, left))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                break
            except ConnectionRefusedError:  # nobody listens (yet): ICMP port unreachable
                continue
            text = data.decode(errors="replace")
            parts = text.split(" ", 2)
            if parts[0] != "SIP/2.0" or len(parts) < 2 or not parts[1].isdigit():
                continue
            if branch not in text:
                continue
            reply = Reply(int(parts[1]), text)
            if reply.status >= 200:
                if method == "INVITE":
                    _ack(sock, (host, port), text, ruri, tag, local)
                return reply
            first = first or reply
        return first


def sip_options(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> str | None:
    """One OPTIONS (with rport); the status line of the final answer, or None."""
    reply = sip_request((host, port), timeout=timeout, from_uri=f"sip:probe@{LOOPBACK}")
    return reply.status_line if reply is not None and reply.status >= 200 else None


def options_ping(host: str, port: int, timeout: float = 0.3) -> bool:
    """True if ``host:port`` answers an OPTIONS request with any SIP response."""
    return sip_request((host, port), timeout=timeout, from_uri=f"sip:bench@{LOOPBACK}") is not None


def _ack(
    sock: socket.socket,
    peer: tuple[str, int],
    reply: str,
    ruri: str,
    tag: str,
    local: tuple[str, int],
) -> None:
    # RFC 3261 §17.1.1.3: the ACK of a non-2xx final response, same branch as the INVITE.
    headers = {
        line.split(":", 1)[0].strip().lower(): line for line in reply.split("\r\n")[1:] if line
    }
    to = headers.get("to", f"To: <{ruri}>")
    frm = headers.get("from", "")
    ack = "\r\n".join(
        [
            f"ACK {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{tag};rport",
            "Max-Forwards: 70",
            frm,
            to,
            f"Call-ID: {tag}@test",
            "CSeq: 1 ACK",
            "Content-Length: 0",
            "",
            "",
        ]
    )
    sock.sendto(ack.encode(), peer)


def malformed_invite(port: int, called: str, content_type_len: int = 4096) -> bytes:
    """An INVITE whose Content-Type header is ``content_type_len`` bytes long (DESIGN.md)."""
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    sdp += "m=audio 40000 RTP/AVP 0\r\n"
    ctype = "application/sdp;" + "x" * content_type_len
    return (
        f"INVITE sip:{called}@127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKmalformed1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:evil@127.0.0.1>;tag=1\r\n"
        f"To: <sip:{called}@127.0.0.1>\r\n"
        "Call-ID: malformed-ctype@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:evil@127.0.0.1:9>\r\n"
        f"Content-Type: {ctype}\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def flood(
    edge: tuple[str, int], source: str, seconds: float, rate: float, number: str = "+4930123456"
) -> list[float]:
    """OPTIONS and INVITEs from ``source`` at ``rate``/s; when each reply came (s from start)."""
    replies: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setblocking(False)
        local = sock.getsockname()
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic() - start) < seconds:
            while sent < now * rate:
                method = "INVITE" if sent % 2 else "OPTIONS"
                ruri = f"sip:{number}@{edge[0]}:{edge[1]}"
                msg = (
                    f"{method} {ruri} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKf{sent};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:flood@192.0.2.9>;tag=f{sent}\r\n"
                    f"To: <{ruri}>\r\nCall-ID: flood{sent}@test\r\nCSeq: 1 {method}\r\n"
                    "Content-Length: 0\r\n\r\n"
                )
                sock.sendto(msg.encode(), edge)
                sent += 1
            try:
                while True:
                    if sock.recv(65535).startswith(b"SIP/2.0 "):
                        replies.append(time.monotonic() - start)
            except BlockingIOError:
                pass
            time.sleep(0.002)
    return replies
