"""``host:port`` as operators and command lines write it: the one parser of switch/.

Pure (no I/O, imports only the standard library and switch.errors), so that every process —
supervisor, worker, edge — reads an address by the same rules::

    parse_host_port("127.0.0.1:5060")       -> ("127.0.0.1", 5060)
    parse_host_port("[::1]:5060")           -> ("::1", 5060)    # IPv6 in brackets (RFC 3986 §3.2.2)
    parse_host_port("office", 5060)         -> ("office", 5060) # no port: the default, if any
    parse_host_port("::1:5060")             -> ValueError       # ambiguous: write [::1]:5060

The host comes back without brackets; :func:`join_host_port` puts them back for IPv6.
"""

from __future__ import annotations


def parse_host_port(
    text: str, default_port: int | None = None, *, allow_empty_host: bool = False
) -> tuple[str, int]:
    """``(host, port)`` of ``text``; ValueError (its message names ``text``) when it is not one.

    ``default_port`` is used when ``text`` has no port; without one a port is required.
    The port is a number from 0 to 65535 (0: "any free port", for the caller to refuse if it
    cannot bind one). ``allow_empty_host`` accepts ``":5070"`` (every interface).
    """
    value = text.strip()
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise ValueError(f"address {text!r}: '[' without ']' (write IPv6 as [::1]:5060)")
        host, rest = value[1:close], value[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"address {text!r}: expected ':PORT' after ']'")
        port_text = rest[1:] if rest else None
        if ":" not in host:
            raise ValueError(f"address {text!r}: brackets are only for IPv6 addresses")
    elif value.count(":") > 1:
        raise ValueError(f"address {text!r}: write an IPv6 address in brackets, e.g. [::1]:5060")
    else:
        host, sep, port_text_or_host = value.partition(":")
        port_text = port_text_or_host if sep else None
    if not host and not allow_empty_host:
        raise ValueError(f"address {text!r}: the host is missing (expected host:port)")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"address {text!r} has no port (expected host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"address {text!r}: the port is not a number from 0 to 65535")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    """The inverse of :func:`parse_host_port`: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def strip_port(hostport: str) -> str:
    """The host of a URI's ``host[:port]`` part, as written (an IPv6 host keeps its brackets)."""
    try:
        host, _ = parse_host_port(hostport, 0)
    except ValueError:
        return hostport
    return f"[{host}]" if ":" in host else host
