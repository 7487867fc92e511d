"""Builders of the queue peer tests (issue 19): the plans of two businesses, a settings file
with one queue, the switch started with its prompts made in advance, and audio measures."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from switch.call.prompts import queue_texts
from tests.helpers.mosquitto import MosquittoBroker
from tests.helpers.ports import LOOPBACK
from tests.helpers.rtp import ALAW, RtpSink, rms
from tests.helpers.sipp import BUSINESS, Sipp, caller
from tests.helpers.switch import Switch
from tests.helpers.worker import make_prompts

OTHER = "+49 30 7654320"  # the second business (Praxis)
OTHER_E164 = "+49307654320"


def plans(tmp_path: Path, overflow: str = ", voicemail") -> Path:
    """The plans of the two businesses: each sends its callers to the queue, then (the
    Tischlerei: ``overflow``, "" for nothing) voicemail."""
    folder = tmp_path / "plans"
    folder.mkdir()
    for tenant, name, number, after in (
        ("tischlerei", "Tischlerei Test", BUSINESS, overflow),
        ("praxis", "Praxis Test", OTHER, ", voicemail"),
    ):
        (folder / f"{tenant}.yaml").write_text(
            f'tenant: {tenant}\nname: {name}\nnumbers: ["{number}"]\n'
            "media: {voicemail_max: 3s}\n"
            f"rules: [{{name: queue, then: [{{queue: heimbuero}}{after}]}}]\n"
        )
    return folder


def settings(tmp_path: Path, members: str, workers: int = 3, **queue: str) -> Path:
    keys = "".join(f"    {k}: {v}\n" for k, v in queue.items())
    path = tmp_path / "settings.yaml"
    path.write_text(f"workers: {workers}\nqueues:\n  heimbuero:\n{keys}    members:\n{members}")
    return path


def start(
    tmp_path: Path,
    settings_file: Path,
    workers: int = 3,
    mqtt: tuple[str, int] | None = None,
    overflow: str = ", voicemail",
) -> Switch:
    """The switch with :func:`plans` (``overflow``: what follows the Tischlerei's queue
    step, ``""`` for nothing) and its prompts made in advance."""
    data_dir = tmp_path / "var"
    make_prompts(data_dir, *queue_texts())  # the cache the workers read
    switch = Switch(tmp_path, plans(tmp_path, overflow), "--settings", str(settings_file))
    if mqtt is not None:
        switch.cmd.remove("--no-mqtt")
        switch.cmd += ["--mqtt", f"{mqtt[0]}:{mqtt[1]}"]
    switch.start()
    switch.started(lambda: switch.health()["workers_up"] == workers, 20, "the workers")
    return switch


def voiced_seconds(sink: RtpSink, threshold: float = 400.0, since: float = 0.0) -> float:
    """How much of what reached the caller was sound (20 ms blocks above ``threshold``),
    of the packets that arrived at or after ``since`` (``time.monotonic()``)."""
    samples = [ALAW[b] for at, pt, p in sink.packets if pt == 8 and at >= since for b in p]
    blocks = [samples[i : i + 160] for i in range(0, len(samples) - 159, 160)]
    return sum(0.02 for block in blocks if rms(block) > threshold)


def first_seconds_level(sink: RtpSink, seconds: float) -> float:
    """The level of the first ``seconds`` of audio (the position announcement)."""
    payload = [ALAW[b] for _, pt, p in sink.packets if pt == 8 for b in p]
    return rms(payload[: int(seconds * 8000)])


def queue_calls_metric(text: str, result: str, tenant: str) -> float:
    for line in text.splitlines():
        if (
            line.startswith("rufweiche_queue_calls_total{")
            and f'result="{result}"' in line
            and f'tenant="{tenant}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def members_yaml(*entries: tuple[str, Sipp, str]) -> str:
    return "".join(
        f'      {name}: {{uri: "sip:{name}@{LOOPBACK}:{sipp.port}", user: {name}{extra}}}\n'
        for name, sipp, extra in entries
    )


def digit_caller(tmp_path: Path, switch: Switch, number: str, sink: RtpSink) -> Sipp:
    """A caller that waits, presses 5 (SIP INFO) after 3 s and takes the switch's BYE."""
    return caller(
        tmp_path,
        switch.sip_port,
        "uac_queue_digit.xml",
        *("-key", "digit", "5"),
        name="digit",
        caller=number,
        rtp_port=sink.port,
        timeout=40,
    )


def refusal_callers(
    tmp_path: Path, switch: Switch, block: str, hold_ms: int
) -> tuple[list[Sipp], list[RtpSink], Sipp]:
    """The callers of :func:`refuse_the_next`: two who wait and hang up after ``hold_ms``
    (+49171555<block>00, …01), their sinks, and the one more (…<block>99) to be refused."""
    waiting, sinks = queue_callers(
        tmp_path,
        switch,
        [f"+49171555{block}{n:02d}" for n in range(2)],
        scenario="uac_queue_hangup.xml",
        name="w",
        hold_ms=hold_ms,
        timeout=30,
    )
    extra = caller(
        tmp_path, switch.sip_port, "uac_final.xml", name="extra", caller=f"+49171555{block}99"
    )
    return waiting, sinks, extra


def refuse_the_next(switch: Switch, waiting: list[Sipp], extra: Sipp) -> Any:
    """anna pauses, ``waiting`` join and wait, ``extra`` calls and is refused; when all
    ended: the queues' snapshot."""
    post_json(switch, "/api/v1/queues/heimbuero/members/anna", {"action": "pause"})
    for call in waiting:
        call.start()
    switch.wait_until(lambda: len(waiting_ids(switch)) == len(waiting), 10, "callers waiting")
    extra.start()
    assert extra.wait(15) == 0, extra.diagnostics()
    for call in waiting:
        assert call.wait(20) == 0, call.diagnostics()
    return switch.get("/api/v1/queues")


def waiting_ids(switch: Switch) -> list[str]:
    return [w["call_id"] for w in switch.get("/api/v1/queues")["queues"]["heimbuero"]["waiting"]]


def post_json(switch: Switch, path: str, body: dict[str, Any]) -> Any:
    return switch.send_json("POST", path, body)[1]


def queue_callers(
    tmp_path: Path,
    switch: Switch,
    numbers: Sequence[str],
    *,
    scenario: str = "uac_queue_listen.xml",
    name: str = "c",
    **options: Any,
) -> tuple[list[Sipp], list[RtpSink]]:
    """One SIPp caller per number (``name`` + its index), each with an :class:`RtpSink` as
    the RTP port it names (the caller closes the sinks); ``options`` go to ``caller``."""
    sinks = [RtpSink() for _ in numbers]
    callers = [
        caller(
            tmp_path,
            switch.sip_port,
            scenario,
            name=f"{name}{n}",
            caller=number,
            rtp_port=sink.port,
            **options,
        )
        for n, (number, sink) in enumerate(zip(numbers, sinks, strict=True))
    ]
    return callers, sinks


def mqtt_member(broker: MosquittoBroker, member: str, action: str) -> None:
    """``action`` (login, logout) for a heimbuero member, published over MQTT."""
    subprocess.run(
        [
            *("mosquitto_pub", "-h", broker.host, "-p", str(broker.port)),
            *("-t", f"rufweiche/v1/queue/heimbuero/member/{member}/set", "-m", action),
        ],
        timeout=10,
        check=True,
    )


def wait_member(switch: Switch, member: str, status: str, what: str) -> None:
    """Until the heimbuero member's status (the switch's API) is ``status``."""
    switch.wait_until(
        lambda: switch.get("/api/v1/queues")["queues"]["heimbuero"]["members"][member]["status"]
        == status,
        10,
        what,
    )
