"""The control channel's messages: one dataclass per op, the JSON lines unchanged."""

from __future__ import annotations

import json

import pytest

from switch.call.calllog import CallPhase, CallRecord, LegRecord, MediaStats
from switch.control import messages as control
from switch.errors import ControlProtocolError

RECORD = CallRecord(
    call_id="abc@host",
    tenant="t",
    called="+49301234560",
    caller=None,
    rule="r",
    worker="w1",
    started_wall=1.5,
    invite_in_ns=10,
    media=MediaStats("PCMU", 500, 500, 1, 2.0, 30.0, 4.3),
    legs=[LegRecord(1, "jan.desk", "sip:201@office", "jan", False, 0, status=200)],
)

EVERY_OP: list[tuple[control.Message, dict[str, object]]] = [
    (
        control.Presence("t", {"jan": "dnd"}),
        {"op": "presence", "tenant": "t", "states": {"jan": "dnd"}},
    ),
    (
        control.Forwarding("t", {"jan": "+491701234567"}),
        {"op": "forwarding", "tenant": "t", "targets": {"jan": "+491701234567"}},
    ),
    (
        control.ForwardSet("t", "jan", "+491701234567"),
        {"op": "forward_set", "tenant": "t", "person": "jan", "number": "+491701234567"},
    ),
    (
        control.ForwardSet("t", "jan", None),
        {"op": "forward_set", "tenant": "t", "person": "jan", "number": None},
    ),
    (control.Reload(("a.yaml",)), {"op": "reload", "paths": ["a.yaml"]}),
    (control.Reload(), {"op": "reload"}),
    (control.Drain(), {"op": "drain"}),
    (control.Stop(2.5), {"op": "stop", "grace": 2.5}),
    (control.Stop(), {"op": "stop"}),
    (
        control.TransferCall("abc@host", "jan.mobile", "anna"),
        {"op": "transfer", "call_id": "abc@host", "target": "jan.mobile", "by": "anna"},
    ),
    (
        control.Ready("w1", "127.0.0.1:5060", 3),
        {"op": "ready", "worker": "w1", "sip": "127.0.0.1:5060", "capacity": 3},
    ),
    (
        control.CallReport(CallPhase.ENDED, RECORD),
        {"op": "call", "phase": "ended", "record": RECORD.to_dict()},
    ),
    (control.Legs(2, 4), {"op": "legs", "in_use": 2, "capacity": 4}),
    (
        control.PresenceSet("t", "jan", "away"),
        {"op": "presence_set", "tenant": "t", "person": "jan", "state": "away"},
    ),
    (control.ReloadFailed(("x: bad",)), {"op": "reload_failed", "problems": ["x: bad"]}),
    (control.Reloaded(2), {"op": "reloaded", "tenants": 2}),
    (
        control.VoicemailFiled(
            "dictation", "jan", "t", "abc@host", None, "+49301234560", "/v/x.wav", 2.5, 1.5
        ),
        {
            "op": "voicemail",
            "kind": "dictation",
            "person": "jan",
            "tenant": "t",
            "call_id": "abc@host",
            "caller": None,
            "called": "+49301234560",
            "path": "/v/x.wav",
            "seconds": 2.5,
            "started_wall": 1.5,
        },
    ),
    (
        control.LimitHit("t", "jan", "Limit reached: 3 calls per hour", "abc@host", "mobile"),
        {
            "op": "limit_hit",
            "tenant": "t",
            "person": "jan",
            "reason": "Limit reached: 3 calls per hour",
            "call_id": "abc@host",
            "call_class": "mobile",
        },
    ),
    (
        control.Originate("r1", "t", "heimbuero.anna", "0301234567", "12", "anna"),
        {
            "op": "originate",
            "request": "r1",
            "tenant": "t",
            "ring": "heimbuero.anna",
            "number": "0301234567",
            "business": "12",
            "by": "anna",
        },
    ),
    (
        control.OriginateAnswer("r1", 202, "ringing", "c2c-1"),
        {
            "op": "originate_answer",
            "request": "r1",
            "status": 202,
            "reason": "ringing",
            "call_id": "c2c-1",
        },
    ),
    # issue 19: the queues
    (
        control.QueueOffer("c1", "anna", "sip:anna@office", "heimbuero.anna", 15.0),
        {
            "op": "queue_offer",
            "call_id": "c1",
            "member": "anna",
            "uri": "sip:anna@office",
            "ref": "heimbuero.anna",
            "timeout": 15.0,
        },
    ),
    (
        control.QueueUpdate("c1", 2, 60.0, "5"),
        {"op": "queue_update", "call_id": "c1", "position": 2, "wait": 60.0, "digit": "5"},
    ),
    (
        control.QueueUpdate("c1", 2, 60.0),
        {"op": "queue_update", "call_id": "c1", "position": 2, "wait": 60.0, "digit": None},
    ),
    (
        control.QueueGiveUp("c1", "max_wait"),
        {"op": "queue_give_up", "call_id": "c1", "reason": "max_wait"},
    ),
    (
        control.QueueJoin("heimbuero", "c1", "t"),
        {"op": "queue_join", "queue": "heimbuero", "call_id": "c1", "tenant": "t"},
    ),
    (
        control.QueueResult("heimbuero", "c1", "anna", answered=True),
        {
            "op": "queue_result",
            "queue": "heimbuero",
            "call_id": "c1",
            "member": "anna",
            "answered": True,
        },
    ),
    (
        control.QueueCallback("heimbuero", "c1", "t", "+4917112345678"),
        {
            "op": "queue_callback",
            "queue": "heimbuero",
            "call_id": "c1",
            "tenant": "t",
            "number": "+4917112345678",
        },
    ),
    (
        control.QueueMember("anna", "pause"),
        {"op": "queue_member", "user": "anna", "action": "pause"},
    ),
    (
        control.QueueCallBack("heimbuero", "cb-1", "t", "+4917112345678", "anna", "sip:a@o", 15.0),
        {
            "op": "queue_call_back",
            "queue": "heimbuero",
            "ref": "cb-1",
            "tenant": "t",
            "number": "+4917112345678",
            "member": "anna",
            "uri": "sip:a@o",
            "timeout": 15.0,
        },
    ),
    (
        control.QueueCallbackDone("heimbuero", "cb-1", "anna", reached=True),
        {
            "op": "queue_callback_done",
            "queue": "heimbuero",
            "ref": "cb-1",
            "member": "anna",
            "reached": True,
        },
    ),
]


@pytest.mark.parametrize(("message", "wire"), EVERY_OP)
def test_every_op_keeps_its_json_shape_and_round_trips(
    message: control.Message, wire: dict[str, object]
) -> None:
    line = control.encode(message)
    assert line.endswith(b"\n")
    assert json.loads(line) == wire
    assert control.decode(line) == message
    assert control.op_of(message) == wire["op"]


def test_every_op_is_covered() -> None:
    assert {control.op_of(m) for m, _ in EVERY_OP} == set(control.OPS)
    assert len(control.OPS) == 26


@pytest.mark.parametrize(
    "line",
    [
        b'{"op":"queue_update","call_id":"c","position":true,"wait":1}',
        b'{"op":"queue_join","queue":"q","call_id":"c"}',
        b'{"op":"queue_update","call_id":"c","position":1.0,"wait":1}',  # queue ops are strict
        b'{"op":"queue_update","call_id":"c","position":1,"wait":1,"digit":5}',
        b'{"op":"queue_result","queue":"q","call_id":"c","member":"m","answered":1}',
        b'{"op":"originate_answer","request":"r","reason":"x"}',
        b'{"op":"stop","grace":true}',
        b'{"op":"reload_failed","problems":"x"}',
        b"not json",
        b"[1, 2]",
        b'{"no": "op"}',
        b'{"op": "launch"}',
        b'{"op": "presence", "tenant": 3}',
        b'{"op": "legs", "in_use": "many"}',
        b'{"op": "call", "phase": "ringing", "record": {}}',
        b'{"op": "call", "phase": "ended", "record": {"call_id": "x"}}',
        b'{"op": "reload", "paths": "a.yaml"}',
        b'{"op": "transfer", "call_id": "x"}',
        b'{"op": "x", "pad": "' + b"a" * control.MAX_LINE + b'"}',
    ],
)
def test_anything_else_is_a_control_protocol_error(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        control.decode(line)
