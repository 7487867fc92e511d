"""Presence shared between the nodes of one installation, through the MQTT broker they share.

Theory of operation
-------------------
Each node's :class:`~presence.mqtt.PresenceBridge`, given a ``node`` name, also publishes
what a person *set* (state, source, note, until — not the call count, which is each node's
own) on ``<prefix>/<tenant>/person/<person>/presence/peer``, retained, with the node's
name and the time it was set (``set_at``), and subscribes to the same topics of the others:

* **no loops**: a node ignores messages that carry its own name, and a state it applied
  from a peer is not published again (:meth:`PeerBook.local_change` sees it unchanged);
* **last writer wins**: a peer's state is applied only when its ``(set_at, node)`` is
  later than the one this node knows for the person — a total order, so when two nodes
  change one person at once, both end with the same state (the later one), never each
  with its own (no update is lost in the sense that the nodes never disagree for good);
* **late joiners** get the retained messages when they subscribe and catch up, the same
  rule deciding between their stored state and the peers'.

Call counts stay per node: a person on a call through node A is busy on node A; B sees
the state the person set. Pure: no I/O (the bridge does the MQTT part).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from presence.errors import PayloadError, TopicError
from presence.model import Key, PresenceRecord, PresenceSource
from rules.presence import PresenceState

PEER_SUFFIX: Final = "/peer"

Setting = tuple[str, str, str | None, str | None]
"""What a person set, comparably: (state, source, note, until ISO)."""


def setting_of(record: PresenceRecord) -> Setting:
    until = record.until.isoformat() if record.until else None
    return (record.set_state.value, record.set_source.value, record.note, until)


@dataclass(frozen=True, slots=True)
class PeerState:
    """One node's message about one person."""

    node: str
    set_at: datetime
    state: PresenceState
    source: PresenceSource
    note: str | None = None
    until: datetime | None = None

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.set_at, self.node)

    @property
    def setting(self) -> Setting:
        until = self.until.isoformat() if self.until else None
        return (self.state.value, self.source.value, self.note, until)

    def encode(self) -> bytes:
        data: dict[str, Any] = {
            "node": self.node,
            "set_at": self.set_at.isoformat(),
            "state": self.state.value,
            "source": self.source.value,
            "note": self.note,
            "until": self.until.isoformat() if self.until else None,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> PeerState:
        try:
            data = json.loads(payload)
            until = data.get("until")
            peer = cls(
                node=str(data["node"]),
                set_at=datetime.fromisoformat(data["set_at"]),
                state=PresenceState(data["state"]),
                source=PresenceSource(data["source"]),
                note=data.get("note"),
                until=None if until is None else datetime.fromisoformat(until),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"peer presence payload {payload[:80]!r}: {exc}") from None
        if peer.set_at.tzinfo is None or (peer.until is not None and peer.until.tzinfo is None):
            raise PayloadError(f"peer presence payload {payload[:80]!r}: times need a zone")
        return peer


def parse_peer_topic(prefix: str, topic: str) -> Key:
    """(tenant, person) of ``<prefix>/<tenant>/person/<person>/presence/peer``."""
    levels = topic.removeprefix(prefix + "/").split("/")
    if (
        not topic.startswith(prefix + "/")
        or len(levels) != 5
        or levels[1] != "person"
        or levels[3:] != ["presence", "peer"]
        or not levels[0]
        or not levels[2]
    ):
        raise TopicError(topic, "is not <tenant>/person/<person>/presence/peer")
    return levels[0], levels[2]


class PeerBook:
    """What this node knows of each person's last setting and who made it when (LWW)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._known: dict[Key, tuple[Setting, tuple[datetime, str]]] = {}

    def local_change(self, key: Key, record: PresenceRecord, now: datetime) -> PeerState | None:
        """The message to publish for ``record`` if it is a change made here, else None
        (unchanged, a call-count change, or what a peer set and we applied)."""
        setting = setting_of(record)
        known = self._known.get(key)
        if known is not None and known[0] == setting:
            return None
        if record.set_source is PresenceSource.DEFAULT:
            return None  # never set by anyone: nothing to tell the others
        # First sight (a start): the record's own time, so that a stored old state does
        # not beat a newer one of a peer; a later change here: now.
        set_at = record.since if known is None else now
        self._known[key] = (setting, (set_at, self.node))
        return PeerState(
            self.node,
            set_at.astimezone(UTC),
            record.set_state,
            record.set_source,
            record.note,
            record.until,
        )

    def accept(self, key: Key, peer: PeerState) -> bool:
        """Whether a peer's message should be applied here (another node's, and later)."""
        if peer.node == self.node:
            return False
        known = self._known.get(key)
        return known is None or peer.order > known[1]

    def applied(self, key: Key, record: PresenceRecord, peer: PeerState) -> None:
        """The peer's state is in the hub now (as ``record``): do not publish it back."""
        self._known[key] = (setting_of(record), peer.order)
