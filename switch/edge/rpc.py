"""JSON-RPC 2.0 to a running Kamailio (e.g. ``pua.publish``), over HTTP on the edge's listener.

xhttp + jsonrpcs; the template answers it only for this host. Not binrpc through ``kamcmd``:
Kamailio 5.6 refuses ``pua.publish`` and ``pua.send_publish`` there ("600 Reply wait/async
mode not supported by this rpc transport"); only the HTTP transport of jsonrpcs carries the
delayed reply they need.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from switch.addresses import parse_host_port
from switch.errors import EdgeRpcError


async def call(
    listen: str, method: str, *params: str, request_id: int = 1, within: float = 5.0
) -> Any:
    """The ``result`` of ``method`` on the edge listening on ``listen`` (host:port).

    Raises :class:`EdgeRpcError`: no connection, no answer within ``within`` seconds, an
    answer that is not JSON-RPC, or a fault (``code`` is its error code, 0 when none).
    """
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params:
        request["params"] = list(params)
    url = f"http://{listen}/RPC"
    # From the edge's own address: the template answers only ``src_ip == myself``, and a
    # connection to 127.0.0.2 (or another loopback alias) comes from 127.0.0.1 unless bound.
    try:
        host = parse_host_port(listen)[0]
    except ValueError as exc:
        raise EdgeRpcError(f"edge RPC {method!r}: {exc}") from None
    connector = aiohttp.TCPConnector(local_addr=(host, 0))
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=within)
            ) as s,
            s.post(url, json=request) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise EdgeRpcError(f"edge RPC {method!r} to {url!r}: {type(exc).__name__}: {exc}") from None
    try:
        answer = json.loads(text)
    except ValueError:
        raise EdgeRpcError(
            f"edge RPC {method!r}: HTTP {response.status}, not JSON: {text[:200]!r}"
        ) from None
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is not None or not isinstance(answer, dict) or "result" not in answer:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else text[:200]
        raise EdgeRpcError(
            f"edge RPC {method!r} failed: {message!r}",
            code=code if isinstance(code, int) else 0,
        )
    return answer["result"]
