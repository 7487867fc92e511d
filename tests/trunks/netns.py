"""Two network namespaces joined by a veth pair: the provider's and the switch's.

provider: 100.64.0.1 (SBC/registrar), .3 (the customer's SIPp), .4 (the mobile network's
SIPp); switch: 100.64.0.2, plus its own ``lo``. Names carry the pid so that runs do not
collide; :meth:`Net.close` removes both (the veth goes with them).
"""

from __future__ import annotations

import os
import subprocess

PROVIDER, SWITCH, CUSTOMER, MOBILE = "100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Net:
    def __init__(self, tag: str = "") -> None:
        suffix = f"{os.getpid()}{tag}"
        self.provider, self.switch = f"rwprov{suffix}", f"rwsw{suffix}"

    def open(self) -> Net:
        _ip("netns", "add", self.provider)
        _ip("netns", "add", self.switch)
        a, b = f"vp{os.getpid() % 100000}", f"vs{os.getpid() % 100000}"
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "netns", self.provider)
        _ip("link", "set", b, "netns", self.switch)
        for ns, dev, addrs in (
            (self.provider, a, (PROVIDER, CUSTOMER, MOBILE)),
            (self.switch, b, (SWITCH,)),
        ):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "name", "eth0")
            for addr in addrs:
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def close(self) -> None:
        for ns in (self.provider, self.switch):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True, timeout=5)
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=5
            ).stdout.split()
            for pid in pids:  # only processes inside our own namespace
                subprocess.run(["kill", "-9", pid], capture_output=True, timeout=5)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def exec(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]
