"""Registration + keepalive traffic of one trunk, measured with tshark on the provider side.

Run as root: ``python -m bench.trunk_traffic [SECONDS] [EXPIRES]``. Builds the namespaces of
tests/trunks/, registers one sipgate-profile trunk (expires EXPIRES, OPTIONS keepalive every
30 s) and counts SIP packets both ways on the provider's interface for SECONDS.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.trunks.conftest import World
from tests.trunks.netns import Net


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    expires = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    with tempfile.TemporaryDirectory() as tmp:
        net = Net(tag="b").open()
        world = World(Path(tmp), net)
        try:
            world.start_provider(min_expires=10)
            world.start_switch(expires=expires)
            world.wait(lambda: world.trunk().get("registered"), 30, "registered")
            pcap = Path(tmp) / "p.pcap"
            cap = subprocess.Popen(
                net.exec(net.provider, "tshark", "-q", "-i", "eth0", "-f", "udp port 5060",
                         "-w", str(pcap)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(seconds)
            cap.terminate()
            cap.wait(10)
            out = subprocess.run(
                ["tshark", "-r", str(pcap), "-T", "fields", "-e", "sip.Method", "-e",
                 "sip.Status-Code", "-e", "frame.len"],
                capture_output=True, text=True, timeout=60,
            ).stdout.split("\n")  # fmt: skip
            rows = [r.split("\t") for r in out if r.strip()]
            total = len(rows)
            size = sum(int(r[-1]) for r in rows if r[-1].isdigit())
            methods: dict[str, int] = {}
            for r in rows:
                key = r[0] or f"reply {r[1]}"
                methods[key] = methods.get(key, 0) + 1
            print(f"trunk traffic over {seconds} s, expires {expires} s, OPTIONS every 30 s:")
            print(
                f"  packets {total} = {total * 60 / seconds:.1f}/min,"
                f" bytes {size * 60 / seconds:.0f}/min"
            )
            print(f"  by kind: {methods}")
        finally:
            world.close()
            net.close()


if __name__ == "__main__":
    main()
