"""Worker SIP ports behind our own edge: free, apart, and out of the kernel's reach.

With 300 calls held (bench/concurrency.py) two workers restarted in a loop: "Address
already in use". Their ports came from binding port 0, so they lay in the ephemeral range,
where every socket bound to port 0 since (here the generator's RTP sockets) could take one
while its worker restarted.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from switch.errors import EdgeError
from switch.supervisor import topology
from switch.supervisor.settings import Settings
from switch.supervisor.topology import WORKER_PORTS, ephemeral_ports, worker_ports, worker_specs


def test_worker_ports_lie_outside_what_port_0_hands_out() -> None:
    specs = worker_specs(Settings(workers=40))
    ports = [int(spec.sip.rsplit(":", 1)[1]) for spec in specs]
    assert len(set(ports)) == 40
    assert all(port in WORKER_PORTS and port not in ephemeral_ports() for port in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as any_port:
        any_port.bind(("127.0.0.1", 0))
        assert any_port.getsockname()[1] in ephemeral_ports()


def test_the_kernels_range_is_read_from_proc() -> None:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert ephemeral_ports() == range(int(low), int(high) + 1)


@pytest.fixture
def three_ports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """WORKER_PORTS narrowed to three ports free now (found among the real range)."""
    free = sorted(worker_ports(3))
    monkeypatch.setattr(topology, "WORKER_PORTS", free)  # any sequence of ports will do
    return free


def test_a_taken_port_is_passed_over(three_ports: list[int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", three_ports[0]))
        assert sorted(worker_ports(2)) == sorted(three_ports[1:])
        with pytest.raises(EdgeError, match=r"only 2 of 3 worker ports free on 127\.0\.0\.1"):
            worker_ports(3)
