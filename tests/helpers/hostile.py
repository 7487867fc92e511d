"""Hostile input against a real worker; run inside ``unshare -n`` as a program.

``python -m tests.helpers.hostile hostile WORKDIR DIALPLAN CALLED`` (tests/switch/worker/
test_hostile.py) replays RFC 4475 and an INVITE with a 4 KB Content-Type at a worker and
prints what happened as one JSON object.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import shared_dir
from tests.helpers.rawsip import malformed_invite, sip_options
from tests.helpers.worker import WorkerProcess


def hostile_run(workdir: Path, dialplan: Path, called: str) -> dict[str, Any]:
    """Inside ``unshare -n``: start a worker, replay RFC 4475 and a 4 KB Content-Type INVITE.

    Returns what happened as a dict (printed as JSON by ``python -m tests.helpers.hostile``).
    """
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    corpus = shared_dir() / "testdata" / "rfc4475"
    files = [
        line.split("\t", 1)[0]
        for line in (corpus / "manifest.tsv").read_text().splitlines()[1:]
        if line.strip()
    ]
    worker = WorkerProcess(workdir, [dialplan])
    result: dict[str, Any] = {"files": len(files), "dead_after": None, "pings": []}
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        worker.start()
        for index, name in enumerate(files):
            data = (corpus / name).read_bytes()
            sender.sendto(data, (LOOPBACK, worker.port))  # one datagram each, dblreq too
            time.sleep(0.03)  # well below the INVITE rate that exhausts pjsua's socket slots
            if not worker.alive():
                result["dead_after"] = name
                break
            if index % 10 == 9:
                result["pings"].append(sip_options(worker.port, timeout=2.0))
        time.sleep(0.5)
        result["after_rfc4475"] = sip_options(worker.port, timeout=2.0)
        sender.sendto(malformed_invite(worker.port, called), (LOOPBACK, worker.port))
        time.sleep(0.5)
        result["after_malformed"] = sip_options(worker.port, timeout=2.0)
        result["alive"] = worker.alive()
    finally:
        sender.close()
        result["rc"] = worker.stop()
        result["log_tail"] = worker.log_text()[-2000:]
    return result


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "hostile":
        print(json.dumps(hostile_run(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])))
    else:
        print(
            "usage: python -m tests.helpers.hostile hostile WORKDIR DIALPLAN CALLED",
            file=sys.stderr,
        )
        sys.exit(2)
