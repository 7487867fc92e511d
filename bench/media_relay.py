"""One-way audio delay through rtpengine (userspace, as the switch runs it) vs a direct
UDP path, measured in the same run, printed side by side.

    python -m bench.media_relay [--packets 250] [--call]

``--call`` (root) adds bench/call_delay.py: a real call through the whole switch (edge +
rtpengine + pjsua2 worker) in network namespaces vs a direct path, in the same run.

A sends 20 ms RTP-sized packets (172 bytes, PCMU) carrying its send time; B records the
arrival. "direct": A -> B. "rtpengine": A -> rtpengine (offer/answer over ng, as Kamailio's
rtpengine module does) -> B. Both sockets on 127.0.0.1, one call.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import struct
import tempfile
import time
from pathlib import Path

from switch.edge.rtpengine import MediaRelay, MediaRelaySettings


def bencode(value: object) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return b"%d:%s" % (len(raw), raw)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(value[k]) for k in sorted(value)) + b"e"
    raise TypeError(type(value))


def ng(port: int, command: dict[str, object]) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        # A fresh cookie per command: rtpengine answers a repeated cookie from its cache.
        cookie = secrets.token_hex(4).encode()
        sock.sendto(cookie + b" " + bencode(command), ("127.0.0.1", port))
        return sock.recv(65535)


def sdp(port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )


def relay_port(reply: bytes) -> int:
    text = reply.decode(errors="replace")
    return int(text.split("m=audio ", 1)[1].split(" ", 1)[0])


def send_and_measure(
    target: tuple[str, int], tx: socket.socket, rx: socket.socket, n: int
) -> list[float]:
    rx.settimeout(0.2)
    delays: list[float] = []
    for seq in range(n):
        sent = time.perf_counter_ns()
        header = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234)
        tx.sendto(header + struct.pack("!q", sent) + b"\xff" * 152, target)
        try:
            data = rx.recv(2048)
        except TimeoutError:
            continue
        arrived = time.perf_counter_ns()
        (stamp,) = struct.unpack("!q", data[12:20])
        delays.append((arrived - stamp) / 1e6)
        time.sleep(max(0.0, 0.02 - (time.perf_counter_ns() - sent) / 1e9))
    return delays


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 2 else float("nan")


async def main(packets: int) -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    direct = send_and_measure(b.getsockname(), a, b, packets)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        ng_port = probe.getsockname()[1]
    settings = MediaRelaySettings(mode="on", ng_listen=f"127.0.0.1:{ng_port}", delete_delay=0)
    with tempfile.TemporaryDirectory() as tmp:
        relay = MediaRelay(settings, public="127.0.0.1", log=Path(tmp) / "rtpengine.log")
        async with relay:
            common = {"call-id": "bench1", "from-tag": "a", "replace": ["origin"]}
            offer = ng(ng_port, {**common, "command": "offer", "sdp": sdp(a.getsockname()[1])})
            to_b = relay_port(offer)  # where B sends: not used (one direction measured)
            answer = ng(
                ng_port,
                {**common, "command": "answer", "to-tag": "b", "sdp": sdp(b.getsockname()[1])},
            )
            to_a_side = relay_port(answer)  # A sends here, rtpengine forwards to B
            del to_b
            relayed = send_and_measure(("127.0.0.1", to_a_side), a, b, packets)
            ng(ng_port, {**common, "command": "delete"})
    print(f"one-way delay, {packets} packets of 20 ms, loopback, one call")
    print(f"{'path':<12}{'received':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in (("direct", direct), ("rtpengine", relayed)):
        print(f"{name:<12}{len(values):>10}{pct(values, 50):>10.3f}{pct(values, 99):>10.3f}")
    print(f"{'added':<12}{'':>10}{pct(relayed, 50) - pct(direct, 50):>10.3f}"
          f"{pct(relayed, 99) - pct(direct, 99):>10.3f}")  # fmt: skip
    print()
    print("registration/keepalive per NATed phone: measured on the wire (tshark on her LAN)")
    print("by tests/switch/edge/test_nat_netns.py, which prints it (pytest -s); see docs/edge.md.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=250)
    parser.add_argument(
        "--call",
        action="store_true",
        help="also a real call through the whole switch in network namespaces (root)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.packets))
    if args.call:
        from bench import call_delay

        call_delay.report(call_delay.run())
