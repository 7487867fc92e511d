"""``python -m switch run`` as a subprocess on free loopback ports, for end-to-end tests.

The ``make_switch`` fixture (tests/switch/conftest.py) starts one and stops it at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.mosquitto import mosquitto_broker
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import REPO, stop_process, wait_alive
from tests.helpers.sipp import Sipp

TEST_TRUNK = "127.0.0.1/32"


def trusting_the_test_trunk(tmp_path: Path, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The SIPp callers of these tests stand in for the provider on 127.0.0.1. The edge
    trusts no address unless the operator names it (issue 14), so name 127.0.0.1 as the
    trunk in the settings, unless the test names its own trunk sources."""
    args = list(extra)
    if "--settings" in args:
        path = Path(args[args.index("--settings") + 1])
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    else:
        path = tmp_path / "switch-settings.yaml"
        settings = {}
        args += ["--settings", str(path)]
    edge = settings.setdefault("edge", {})
    if "trunk_sources" not in edge:
        edge["trunk_sources"] = [TEST_TRUNK]
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return tuple(args)


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
        if not bare:
            extra = trusting_the_test_trunk(tmp_path, extra)
        self.sip_port = free_port()
        self.http_port = free_port(udp=False, tcp=True)
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
        self.started(lambda: self.health()["ready"], 20, "switch ready")
        return self

    def started(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """:meth:`wait_until` during start-up: a switch that never gets there is stopped
        with its whole process group (edge, rtpengine, workers), not left behind."""
        try:
            return self.wait_until(check, timeout, what)
        except BaseException:
            self.stop()
            raise

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=2) as response:
            return json.loads(response.read())

    def text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=2) as response:
            return str(response.read().decode())

    def fetch(self, path: str) -> tuple[bytes, str]:
        """The body of ``path`` and its Content-Type (a recording, say)."""
        with urllib.request.urlopen(self.url + path, timeout=2) as response:
            return bytes(response.read()), str(response.headers["Content-Type"])

    def post(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read())

    def send_json(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """``body`` as JSON to ``path`` (POST, PUT); the status and the decoded answer."""
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())

    def health(self) -> dict[str, Any]:
        try:
            return dict(self.get("/healthz"))
        except urllib.error.HTTPError as exc:  # 503 while not ready, with the same JSON body
            return dict(json.loads(exc.read()))
        except OSError:
            return {"ready": False, "detail": {"workers": {"w1": {"ready": False, "pid": 0}}}}

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_alive(
            self.proc, check, timeout, f"switch: {what}", lambda: self.output()[-4000:], 0.05
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def calls(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/calls")["calls"])

    def worker(self) -> dict[str, Any]:
        return dict(self.health()["detail"]["workers"]["w1"])

    def stop(self) -> int | None:
        assert self.proc is not None
        return stop_process(self.proc, grace=15)


def plan_text(device: str, rule: str = "ring jan") -> str:
    """Tischlerei Test: ``rule`` rings jan's one ``device`` for 10 s."""
    return f"""
tenant: test-tenant
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people:
  jan:
    name: Jan
    devices: {{desk: "{device}"}}
rules:
  - name: {rule}
    then:
      - {{ring: [jan.desk], timeout: 10s}}
"""


def write(path: Path, text: str) -> Path:
    # Write to a temporary name and rename, as an editor does: the watcher sees one change.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def switch_with_mqtt(
    tmp_path: Path, plans: Path, topic: str
) -> Iterator[tuple[Switch, subprocess.Popen[bytes]]]:
    """A (not yet started) :class:`Switch` publishing to a test-owned Mosquitto, and a
    ``mosquitto_sub`` waiting (up to 40 s) for one message on ``topic`` (its stdout piped).
    On exit the subscriber, the switch (if started) and the broker are stopped."""
    with mosquitto_broker(tmp_path) as broker:
        host, port = broker.address
        switch = Switch(tmp_path, plans)
        switch.cmd.remove("--no-mqtt")
        switch.cmd += ["--mqtt", f"{host}:{port}"]
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", host, "-p", str(port), "-t", topic, "-C", "1", "-W", "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            yield switch, sub
        finally:
            stop_process(sub)
            if switch.proc is not None:
                switch.stop()


def recorded(
    switch: Switch, sub: subprocess.Popen[bytes], call: Sipp, kind: str
) -> tuple[dict[str, Any], list[dict[str, Any]], bytes, str]:
    """Start ``switch`` (of :func:`switch_with_mqtt`) and ``call``, which leaves a recording
    of ``kind`` ("voicemails", "dictations"): the MQTT notice of it, the API's rows of
    ``kind`` (once there are any), and the first row's file with its Content-Type."""
    switch.start()
    call.start()
    assert call.wait(30) == 0, call.diagnostics()
    out, err = sub.communicate(timeout=15)
    assert sub.returncode == 0, err
    rows = switch.wait_until(lambda: switch.get(f"/api/v1/{kind}")[kind], 10, f"{kind} record")
    served, content_type = switch.fetch(rows[0]["url"])
    return json.loads(out), rows, served, content_type
