"""``python -m switch run`` as a subprocess on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip_peers import LOOPBACK, REPO, free_udp_port, stop_process


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Switch:
    """``python -m switch run`` on free ports, with helpers to read its HTTP side."""

    def __init__(
        self, tmp_path: Path, dialplans: Path, *extra: str, bare: bool | None = None
    ) -> None:
        # The edge runs in every mode (issue 15). These tests talk SIP to the one worker
        # itself, so they ask for the bare worker explicitly, unless they run a pool
        # (--workers), bring a settings file, or choose the mode themselves.
        if bare is None:
            bare = not any(o in extra for o in ("--workers", "--settings", "--edge-mode"))
        self.sip_port = free_udp_port()
        self.http_port = free_tcp_port()
        self.url = f"http://{LOOPBACK}:{self.http_port}"
        self.log = tmp_path / "switch.log"
        self.cmd = [
            sys.executable,
            "-m",
            "switch",
            "run",
            "--dialplans",
            str(dialplans),
            "--sip",
            f"{LOOPBACK}:{self.sip_port}",
            "--http",
            f"{LOOPBACK}:{self.http_port}",
            "--data-dir",
            str(tmp_path / "var"),
            "--no-mqtt",
            *(("--edge-mode", "off") if bare else ()),
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Switch:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_until(lambda: self.health()["ready"], 20, "switch ready")
        return self

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=2) as response:
            return json.loads(response.read())

    def text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=2) as response:
            return str(response.read().decode())

    def health(self) -> dict[str, Any]:
        try:
            return dict(self.get("/healthz"))
        except urllib.error.HTTPError as exc:  # 503 while not ready, with the same JSON body
            return dict(json.loads(exc.read()))
        except OSError:
            return {"ready": False, "detail": {"workers": {"w1": {"ready": False, "pid": 0}}}}

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"switch exited ({self.proc.returncode}):\n{self.output()}")
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def calls(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/calls")["calls"])

    def worker(self) -> dict[str, Any]:
        return dict(self.health()["detail"]["workers"]["w1"])

    def stop(self) -> int | None:
        assert self.proc is not None
        return stop_process(self.proc, grace=15)


@pytest.fixture
def make_switch(tmp_path: Path) -> Iterator[Callable[..., Switch]]:
    started: list[Switch] = []

    def make(dialplans: Path, *extra: str, bare: bool | None = None) -> Switch:
        switch = Switch(tmp_path, dialplans, *extra, bare=bare).start()
        started.append(switch)
        return switch

    try:
        yield make
    finally:
        for switch in started:
            if switch.proc is not None and switch.proc.poll() is None:
                switch.stop()
