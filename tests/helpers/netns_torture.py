"""Replay the RFC 4475 torture messages at an edge, inside a private network namespace.

Run by tests/switch/edge/test_torture.py as ``unshare -n python -m tests.helpers.netns_torture
WORKDIR TESTDATA``: the messages name foreign hosts (192.0.2.0/24, ...), so the edge, a
SIPp stand-in worker and the sender all live in a namespace that has only ``lo``
(PEERS.md §5). Each file goes out as one UDP datagram (shared/testdata/rfc4475/README.md),
then an OPTIONS of our own must be answered. Prints one JSON object: per file, whether the
edge was still alive after it; and whether Kamailio is still running at the end.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

from switch.edge import Edge, options_ping
from tests.helpers.edge import edge_settings, sipp_worker
from tests.helpers.ports import free_port


async def replay(work: Path, testdata: Path) -> dict[str, object]:
    files = sorted(
        line.split("\t", 1)[0]
        for line in (testdata / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
        if line.strip()
    )
    worker_port = free_port(tcp=True)
    worker = await sipp_worker(work, worker_port).start()
    edge = Edge(
        edge_settings(
            work,
            workers=[{"uri": f"sip:127.0.0.1:{worker_port}", "maxload": 4}],
            trunk_sources=["127.0.0.1/32"],
            public_numbers=["+4930123456"],
            pike_density=100_000,  # 50 files from one address must reach the parser, not pike
        )
    )
    alive: dict[str, bool] = {}
    try:
        await edge.start()
        host, port = edge.settings.listen_host, edge.settings.listen_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for name in files:
                sock.sendto((testdata / name).read_bytes(), (host, port))
                alive[name] = await options_ping(host, port, wait=1.0) == 200
        running = edge.running
    finally:
        await edge.stop()
        await worker.stop()
    return {"alive": alive, "running_at_end": running, "log": edge.log_tail(40)}


def main() -> None:
    work, testdata = Path(sys.argv[1]), Path(sys.argv[2])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps(asyncio.run(replay(work, testdata))))


if __name__ == "__main__":
    main()
