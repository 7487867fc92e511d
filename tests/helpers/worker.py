"""``python -m switch.worker`` as a real process, and the dial plans and prompts it runs with.

:class:`WorkerProcess` starts the worker on a free UDP port with a control socketpair whose
messages it collects; :func:`ended` is the predicate of the call record at hang-up
(``worker.wait_for(ended)["record"]``). :func:`plan` writes the one-person dial plan of the
worker tests (devices are SIPp targets), :func:`ring_worker` a worker on it; :func:`completed_call`
runs one call through to its end; :func:`make_prompts` fills the worker's prompt cache.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from switch.worker.announcements import Announcements, wav_seconds
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import PYTHON, REPO, running, stop_process
from tests.helpers.sipp import BUSINESS, Sipp, start_bound, wait_all


def ended(message: dict[str, Any]) -> bool:
    """The control message that carries a call's final record."""
    return bool(message["op"] == "call" and message["phase"] == "ended")


class WorkerProcess:
    """``python -m switch.worker`` with a control socketpair whose messages are collected."""

    def __init__(
        self,
        workdir: Path,
        dialplans: Sequence[Path],
        *,
        routes: Sequence[str] = (),
        trunk: str | None = None,
        grace: float = 3.0,
        extra: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.log = workdir / "worker.log"
        self._ours, theirs = socket.socketpair()
        self._theirs = theirs
        cmd = [
            PYTHON,
            "-m",
            "switch.worker",
            "--sip",
            f"{LOOPBACK}:{self.port}",
            "--dialplans",
            *[str(p) for p in dialplans],
            "--control-fd",
            str(theirs.fileno()),
            "--name",
            "wt",
            "--grace",
            str(grace),
            *extra,
        ]
        if os.environ.get("RUFWEICHE_TEST_MEDIA_BYPASS") == "1" and "--media-bypass" not in cmd:
            cmd.append("--media-bypass")  # run a suite with the bypass on (issue 16)
        for route in routes:
            cmd += ["--route", route]
        if trunk:
            cmd += ["--trunk", trunk]
        self.cmd = cmd
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> WorkerProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=[self._theirs.fileno()],
                start_new_session=True,
            )
        self._theirs.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda m: m["op"] == "ready", timeout)
        return self

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._ours.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                with self._lock:
                    self.messages.append(json.loads(line))

    def send(self, message: dict[str, Any]) -> None:
        self._ours.sendall(json.dumps(message).encode() + b"\n")

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    if predicate(message):
                        return message
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no matching control message; log:\n{self.log_text()[-3000:]}")

    def records(self, phase: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m["record"] for m in self.messages if m["op"] == "call" and m["phase"] == phase]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        rc = stop_process(self.proc, grace=10.0) if self.proc is not None else None
        self._ours.close()
        return rc


def write_plan(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def voicemail_plan(path: Path, desk: str, head: str = "") -> Path:
    """``test-tenant`` at BUSINESS as ``path``: closed, every call to voicemail; Jan's desk
    at ``desk`` (a SIP URI), ``head`` more top-level keys (media, privacy)."""
    return write_plan(
        path,
        f"""
tenant: test-tenant
name: Test
numbers: ["{BUSINESS}"]
{head}
people:
  jan: {{name: Jan, devices: {{desk: "{desk}"}}}}
rules:
  - {{name: closed, then: [voicemail]}}
""",
    )


def assert_stored_wav(
    row: Mapping[str, Any], served: bytes, content_type: str, folder: Path
) -> None:
    """The message ``row`` of the API names a file in ``folder``, served as it is, as WAV."""
    path = Path(row["path"])
    assert path.parent == folder
    assert path.read_bytes() == served
    assert content_type == "audio/wav"


def plan(tmp_path: Path, steps: str, devices: Mapping[str, str]) -> Path:
    """Tischlerei Test at BUSINESS: one rule with ``steps``; jan's ``devices`` by name."""
    device_map = ", ".join(f'{name}: "sip:{name}@{address}"' for name, address in devices.items())
    return write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: test-tenant
name: Tischlerei Test
numbers: ["{BUSINESS}"]
people:
  jan:
    name: Jan
    devices: {{{device_map}}}
rules:
  - name: test rule
    then:
{steps}
""",
    )


def make_prompts(data_dir: Path, *texts: str) -> dict[str, float]:
    """Synthesize ``texts`` into the worker's prompt cache; their lengths in seconds."""
    ann = Announcements(data_dir)
    return {text: wav_seconds(ann.synthesize("de", text)) for text in texts}


def ring_worker(tmp_path: Path, steps: str, *targets: Sipp, **options: Any) -> WorkerProcess:
    """A worker on :func:`plan` with ``steps``, jan's devices the SIPp ``targets`` (each
    device named as its target); ``options`` go to :class:`WorkerProcess` (extra, grace)."""
    dialplan = plan(tmp_path, steps, {peer.name: peer.address for peer in targets})
    return WorkerProcess(tmp_path, [dialplan], **options)


def callee_worker(tmp_path: Path, callee: Sipp, **options: Any) -> WorkerProcess:
    """A worker whose plan rings jan's one device, the SIPp ``callee``, for 5 s;
    ``options`` go to :class:`WorkerProcess` (extra, grace)."""
    dialplan = plan(
        tmp_path, "      - {ring: [jan.callee], timeout: 5s}", {"callee": callee.address}
    )
    return WorkerProcess(tmp_path, [dialplan], **options)


def call_record(worker: WorkerProcess, call: Sipp, timeout: float = 25) -> dict[str, Any]:
    """Wait until the SIPp ``call`` ends with exit 0 (else fail with its and the worker's
    output); then the record of the ended call that the worker sent."""
    assert call.wait(timeout) == 0, call.diagnostics() + worker.log_text()[-2000:]
    return dict(worker.wait_for(ended)["record"])


def start_call(worker: WorkerProcess, call: Sipp, *targets: Sipp) -> float:
    """Start the SIPp ``targets`` (until each has bound its port), the worker, then the
    caller; the ``time.monotonic()`` at which the caller started (for timing asserts)."""
    start_bound(*targets)
    worker.start()
    started = time.monotonic()
    call.start()
    return started


@contextmanager
def completed_call(
    worker: WorkerProcess, call: Sipp, *targets: Sipp, timeout: float = 20.0
) -> Iterator[float]:
    """:func:`start_call`, then until the caller and every target ended with exit 0 (each
    within ``timeout``); yields the caller's start time, and stops them all on the way out."""
    with running(*targets, worker, call):
        started = start_call(worker, call, *targets)
        wait_all(call, *targets, timeout=timeout)
        yield started
