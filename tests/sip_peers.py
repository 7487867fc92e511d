"""Real SIP peers for the worker tests: SIPp processes, the worker process, OPTIONS pings.

Every process runs in its own process group and is killed by the fixture that started it
(``finally``), so that a failing test leaves nothing behind. Ports come from binding port 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
SIPP_DIR = REPO / "tests" / "switch" / "sipp"
PYTHON = sys.executable


def free_udp_port(pair: bool = False) -> int:
    """A UDP port free right now (and, with ``pair``, the one above it too, for RTP+RTCP)."""
    for _ in range(200):
        port = random.randrange(20000, 60000, 2) if pair else 0
        socks = []
        try:
            for offset in (0, 1) if pair else (0,):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((LOOPBACK, port + offset if port else 0))
            return int(socks[0].getsockname()[1])
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free UDP port found")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> int | None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def sip_options(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> str | None:
    """Send one OPTIONS (with rport) and return the status line of the answer, or None."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    local = sock.getsockname()[1]
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    message = (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{local};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{LOOPBACK}:{local}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{LOOPBACK}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    try:
        deadline = time.monotonic() + timeout
        sock.sendto(message.encode(), (host, port))
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionRefusedError):
                continue
            text = data.decode(errors="replace")
            if branch in text and not text.startswith("SIP/2.0 1"):
                return text.split("\r\n", 1)[0]
        return None
    finally:
        sock.close()


class Sipp:
    """One SIPp process running a scenario of tests/switch/sipp/ (or a built-in one)."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        scenario: str,
        args: Sequence[str],
        *,
        port: int | None = None,
        media_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.port = port or free_udp_port()
        self.media_port = media_port or free_udp_port(pair=True)
        self.messages = workdir / f"{name}_msgs.log"
        self.logs = workdir / f"{name}_logs.log"
        self.stat = workdir / f"{name}_stat.csv"
        scenario_args = (
            ["-sn", scenario] if "." not in scenario else ["-sf", str(SIPP_DIR / scenario)]
        )
        self.cmd = [
            "sipp",
            *scenario_args,
            "-i",
            LOOPBACK,
            "-p",
            str(self.port),
            "-mi",
            LOOPBACK,
            "-mp",
            str(self.media_port),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.messages),
            "-trace_logs",
            "-log_file",
            str(self.logs),
            "-trace_stat",
            "-stf",
            str(self.stat),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = workdir / f"{name}.out"

    def start(self) -> Sipp:
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            raise AssertionError(f"sipp {self.name} still running after {timeout} s") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def wait_bound(self, timeout: float = 5.0) -> None:
        """Until SIPp has bound its SIP port (probing by trying to bind it ourselves)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind((LOOPBACK, self.port))
            except OSError:
                return
            finally:
                probe.close()
            time.sleep(0.02)
        raise AssertionError(f"sipp {self.name} did not bind UDP {self.port}")

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def log_lines(self) -> list[str]:
        return self.logs.read_text(errors="replace").splitlines() if self.logs.exists() else []

    def message_text(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def received(self, method_or_status: str) -> list[str]:
        """Every message SIPp received whose start line begins with ``method_or_status``."""
        blocks = self.message_text().split("----------------------------------------------")
        found = []
        for block in blocks:
            if "message received" not in block:
                continue
            body = block.split("\n", 2)[-1].lstrip()
            if body.startswith(method_or_status):
                found.append(body)
        return found

    def diagnostics(self) -> str:
        parts = [f"--- {self.name}: {' '.join(self.cmd)}"]
        for path in (self.out, self.logs):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


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
        self.port = port or free_udp_port()
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


@contextmanager
def running(*things: Sipp | WorkerProcess) -> Iterator[None]:
    """Stop every process on the way out, whatever happened."""
    try:
        yield
    finally:
        for thing in things:
            thing.stop()


def write_plan(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------- hostile input


def shared_dir() -> Path:
    """/work/shared beside the repository (CI clones the repo with shared/ next to it)."""
    return (REPO / ".." / "shared").resolve()


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


def hostile_run(workdir: Path, dialplan: Path, called: str) -> dict[str, Any]:
    """Inside ``unshare -n``: start a worker, replay RFC 4475 and a 4 KB Content-Type INVITE.

    Returns what happened as a dict (printed as JSON by ``python -m tests.sip_peers``).
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
        print("usage: python -m tests.sip_peers hostile WORKDIR DIALPLAN CALLED", file=sys.stderr)
        sys.exit(2)


# ----------------------------------------------------------------------- baresip


def free_tcp_port() -> int:
    """A free TCP port *below* the ephemeral range: connecting to an ephemeral port nobody
    listens on yet can connect the socket to itself (TCP simultaneous open), seen here."""
    for _ in range(200):
        port = random.randrange(10000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found")


def free_sip_port() -> int:
    """A port free for baresip: UDP and TCP at PORT, TLS at PORT+1 (PEERS.md §1)."""
    for _ in range(200):
        port = random.randrange(10000, 32000, 2)
        socks: list[socket.socket] = []
        try:
            for kind, offset in (
                (socket.SOCK_DGRAM, 0),
                (socket.SOCK_STREAM, 0),
                (socket.SOCK_STREAM, 1),
            ):
                sock = socket.socket(socket.AF_INET, kind)
                socks.append(sock)
                sock.bind((LOOPBACK, port + offset))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free SIP port for baresip")


class Baresip:
    """A headless baresip phone (config per PEERS.md §1) with a ctrl_tcp event reader."""

    def __init__(self, workdir: Path, name: str, user: str) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.user = user
        self.sip_port = free_sip_port()
        self.ctrl_port = free_tcp_port()
        self.rtp_base = free_udp_port(pair=True)
        (self.dir / "config").write_text(
            "\n".join(
                [
                    "poll_method\tepoll",
                    f"sip_listen\t{LOOPBACK}:{self.sip_port}",
                    "audio_source\tausine,440",
                    "audio_alert\tnone",
                    "audio_player\tnone",
                    "ausrc_srate\t48000",
                    "ausrc_channels\t2",
                    f"rtp_ports\t{self.rtp_base}-{self.rtp_base + 9}",
                    "rtcp_mux\tno",
                    "rtp_stats\tyes",
                    "jitter_buffer_delay\t0-20",
                    "module_path\t/usr/lib/baresip/modules",
                    "module\tg711.so",
                    "module\tausine.so",
                    "module_app\taccount.so",
                    "module_app\tmenu.so",
                    "module_app\tctrl_tcp.so",
                    f"ctrl_tcp_listen\t{LOOPBACK}:{self.ctrl_port}",
                    "",
                ]
            )
        )
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{LOOPBACK}:{self.sip_port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"
        )
        (self.dir / "contacts").write_text("")
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self._ctrl: socket.socket | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{LOOPBACK}:{self.sip_port}"

    def start(self, *extra: str, listen: bool = True) -> Baresip:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.dir), "-n", LOOPBACK, *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if listen:
            deadline = time.monotonic() + 5
            while "baresip is ready" not in self.log.read_text(errors="replace"):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"baresip {self.name} did not start")
                time.sleep(0.05)
            while self._ctrl is None:
                try:
                    self._ctrl = socket.create_connection((LOOPBACK, self.ctrl_port), 0.2)
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"baresip {self.name}: no ctrl_tcp") from None
                    time.sleep(0.05)
            self._ctrl.settimeout(None)  # the connect timeout would end the reader
            threading.Thread(target=self._read_events, daemon=True).start()
        return self

    def _read_events(self) -> None:
        assert self._ctrl is not None
        buffer = b""
        while True:
            try:
                chunk = self._ctrl.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:  # netstrings: LEN:{json},
                size, rest = buffer.split(b":", 1)
                if len(rest) <= int(size):
                    break
                self.events.append(json.loads(rest[: int(size)]))
                buffer = rest[int(size) + 1 :]

    def event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if event.get("type") == kind:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"baresip {self.name}: no {kind} event in {self.events}")

    def command(self, command: str, params: str = "") -> None:
        """One ctrl_tcp command (a JSON netstring, PEERS.md §1), e.g. ``transfer`` + a URI;
        its answer arrives among :attr:`events` (``"response": true``)."""
        assert self._ctrl is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._ctrl.sendall(str(len(body)).encode() + b":" + body + b",")

    def packets(self) -> tuple[int, int]:
        """(transmitted, received) RTP packets from the stats block printed at hang-up."""
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("packets:"):
                tx, rx = line.split()[1:3]
                return int(tx), int(rx)
        raise AssertionError(f"baresip {self.name}: no packet stats in its log")

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
        if self.proc is not None:
            stop_process(self.proc)


class Tshark:
    """A loopback capture with a BPF filter, started before the call and read afterwards."""

    def __init__(self, workdir: Path, name: str, bpf: str) -> None:
        self.pcap = workdir / f"{name}.pcap"
        self.err = workdir / f"{name}.err"
        self.bpf = bpf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Tshark:
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                ["tshark", "-i", "lo", "-f", self.bpf, "-w", str(self.pcap)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "Capture started" not in self.err.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"tshark did not start: {self.err.read_text()}")
            time.sleep(0.05)
        time.sleep(0.5)  # packets right after the message were still missed (seen here)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(0.3)  # let the last packets reach the file
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)

    def read(self, *args: str) -> str:
        return subprocess.run(
            ["tshark", "-r", str(self.pcap), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
