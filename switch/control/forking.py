"""The fork-server channel: the supervisor asks the zygote for worker processes.

The zygote (:mod:`switch.worker.forkserver`) is one process that has imported Python,
pydantic, holidays, phonenumbers, rules, the worker modules and pjsua2's module, and
compiled the dial plans, once; every worker is an ``os.fork()`` of it, sharing those pages
copy-on-write (issue 16: ~40 MB PSS per spawned worker). The supervisor's end is
:class:`switch.control.launcher.ForkServer`.

Newline-delimited JSON over a Unix stream socket, like :mod:`switch.control.messages`
(one ``op`` per object; :func:`encode`/:func:`decode` are the only places that know the
shape; both ends ``match`` with :func:`typing.assert_never`).

supervisor -> zygote
    :class:`Fork`     ``{"op": "fork", "id": n, "argv": [...]}`` plus, as SCM_RIGHTS
                      ancillary data on the same ``sendmsg``, the worker's end of its
                      control socketpair. ``argv`` is the worker's command line after
                      ``python -m switch.worker`` (:meth:`WorkerSpec.argv`, whose
                      ``--control-fd`` the child replaces by the descriptor it received).

zygote -> supervisor
    :class:`Preloaded` ``{"op": "preloaded", "pid": p, "tenants": n}`` once, when the imports
                       and the plans are in memory (``tenants`` -1: the plans did not load;
                       each worker then loads its own and reports the problem as today)
    :class:`Forked`    ``{"op": "forked", "id": n, "pid": p}`` the worker runs
    :class:`ForkFailed` ``{"op": "fork_failed", "id": n, "error": text}``
    :class:`Exited`    ``{"op": "exited", "pid": p, "returncode": r}`` a worker ended (``r`` as
                       :attr:`subprocess.Popen.returncode`: negative for a signal)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, assert_never

from switch.errors import ControlProtocolError

MAX_LINE: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Fork:
    id: int
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Preloaded:
    pid: int
    tenants: int


@dataclass(frozen=True, slots=True)
class Forked:
    id: int
    pid: int


@dataclass(frozen=True, slots=True)
class ForkFailed:
    id: int
    error: str


@dataclass(frozen=True, slots=True)
class Exited:
    pid: int
    returncode: int


ToZygote = Fork
FromZygote = Preloaded | Forked | ForkFailed | Exited
Message = ToZygote | FromZygote


def encode(message: Message) -> bytes:
    data: dict[str, Any]
    match message:
        case Fork(id_, argv):
            data = {"op": "fork", "id": id_, "argv": list(argv)}
        case Preloaded(pid, tenants):
            data = {"op": "preloaded", "pid": pid, "tenants": tenants}
        case Forked(id_, pid):
            data = {"op": "forked", "id": id_, "pid": pid}
        case ForkFailed(id_, error):
            data = {"op": "fork_failed", "id": id_, "error": error}
        case Exited(pid, returncode):
            data = {"op": "exited", "pid": pid, "returncode": returncode}
        case _:
            assert_never(message)
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlProtocolError(f"fork server: {key!r} must be a number, not {value!r}")
    return value


def decode(line: bytes) -> Message:
    if len(line) > MAX_LINE:
        raise ControlProtocolError(f"fork server: line over {MAX_LINE} bytes")
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"fork server: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlProtocolError(f"fork server: not an object: {data!r}")
    op = data.get("op")
    if op == "fork":
        argv = data.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ControlProtocolError(f"fork server: 'argv' must be strings, not {argv!r}")
        return Fork(_int(data, "id"), tuple(argv))
    if op == "preloaded":
        return Preloaded(_int(data, "pid"), _int(data, "tenants"))
    if op == "forked":
        return Forked(_int(data, "id"), _int(data, "pid"))
    if op == "fork_failed":
        return ForkFailed(_int(data, "id"), str(data.get("error", "")))
    if op == "exited":
        return Exited(_int(data, "pid"), _int(data, "returncode"))
    raise ControlProtocolError(f"fork server: unknown op {op!r}")


__all__ = [
    "Exited",
    "Fork",
    "ForkFailed",
    "Forked",
    "FromZygote",
    "Preloaded",
    "ToZygote",
    "decode",
    "encode",
]
