"""What the running edge counts, read over its RPC (issue 14 items 2 and 7).

:func:`malformed_total` — requests Kamailio refused as malformed: the core's
``core:bad_msg_hdr`` (headers that do not parse), sanity's 400 replies (``sl:400_replies``;
the template sends no 400 of its own) and the template's own counter of packets that are no
SIP at all (htable ``malformed``, event_route[core:receive-parse-error]). :func:`reset_load`
— ``dispatcher.reload``: every worker's call load back to 0 (the dispatcher keeps a load per
destination, and a reload builds the destinations anew).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Rpc = Callable[..., Awaitable[Any]]

MALFORMED_STATS = ("core:bad_msg_hdr", "sl:400_replies")


def parse_statistics(lines: Iterable[object]) -> dict[str, int]:
    """``stats.get_statistics`` answers ``["core:bad_msg_hdr = 3", ...]``: as a dict."""
    values: dict[str, int] = {}
    for line in lines:
        name, sep, value = str(line).partition(" = ")
        if sep and value.strip().lstrip("-").isdigit():
            values[name.strip()] = int(value)
    return values


def htable_counter(dump: object, key: str) -> int:
    """The integer ``key`` of an ``htable.dump`` answer (0 when it is not there)."""
    if not isinstance(dump, list):
        return 0
    for entry in dump:
        slots = entry.get("slot", []) if isinstance(entry, dict) else []
        for item in slots:
            if isinstance(item, dict) and item.get("name") == key:
                value = item.get("value")
                return value if isinstance(value, int) else 0
    return 0


async def malformed_total(rpc: Rpc) -> int:
    """Malformed requests the edge refused since it started. Raises EdgeRpcError."""
    # The RPC takes a statistic's bare name (or "group:" for a whole group).
    names = [name.partition(":")[2] for name in MALFORMED_STATS]
    stats = parse_statistics(await rpc("stats.get_statistics", *names))
    unparsed = htable_counter(await rpc("htable.dump", "malformed"), "count")
    return sum(stats.get(name, 0) for name in MALFORMED_STATS) + unparsed


async def reset_load(rpc: Rpc) -> None:
    """Every worker's call load at the edge back to 0. Raises EdgeRpcError."""
    await rpc("dispatcher.reload")


__all__ = ["htable_counter", "malformed_total", "parse_statistics", "reset_load"]
