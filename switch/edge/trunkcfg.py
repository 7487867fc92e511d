"""The trunk parts of ``kamailio.cfg``: uac/DNS/keepalive parameters and the generated routes.

Everything here is made from validated :class:`~switch.edge.trunks.TrunksSettings` values
(names match ``[a-z][a-z0-9_-]*``, numbers ``+[0-9]+``, hosts ``[A-Za-z0-9.-]``, networks
parsed by :mod:`ipaddress`), so the text can be placed into the template unquoted.
The fixed routes (TRUNK_IN, TRUNK_OUT, failure_route[TRUNK_AUTH]) are in the template; this
module writes only what differs per trunk: which source is which trunk, where its DID
comes from, its country code and its number blocks.
"""

from __future__ import annotations

from switch.edge.trunks import Trunk, TrunksSettings

NEVER = "^$never^"
_DID_SOURCE = {
    "ruri": "$rU",
    "to": "$tU",
    "ppi": "$(hdr(P-Preferred-Identity){nameaddr.uri}{uri.user})",
}


def _blocks_regex(trunk: Trunk) -> str:
    if not trunk.numbers:
        return NEVER
    return "^(" + "|".join(block.regex() for block in trunk.numbers) + ")$"


def core_params(trunks: TrunksSettings) -> str:
    """Core DNS settings for SRV/NAPTR resolution of registrars and outbound proxies."""
    yes = {True: "yes", False: "no"}
    lines = [
        f"dns_try_naptr={yes[trunks.dns_naptr]}",
        f"dns_srv_lb={yes[trunks.dns_srv_lb]}",
        f"use_dns_failover={yes[trunks.dns_failover]}",
    ]
    if any(t.keepalive == "crlf" for t in trunks.accounts):
        interval = min(t.keepalive_interval for t in trunks.accounts if t.keepalive == "crlf")
        lines += ["tcp_keepalive=yes", f"tcp_keepidle={interval}", f"tcp_keepintvl={interval}"]
    return "\n".join(lines)


def module_params(trunks: TrunksSettings, contact: str) -> str:
    """uac registration + auth AVPs, and OPTIONS keepalives (module keepalive)."""
    retry = min((t.retry_interval for t in trunks.accounts), default=60)
    lines = [
        f'modparam("uac", "reg_timer_interval", {trunks.timer_interval})',
        # Never 0: uac would disable a trunk for good after one failed registration.
        f'modparam("uac", "reg_retry_interval", {retry})',
        f'modparam("uac", "reg_contact_addr", "{contact}")',
    ]
    options = [t for t in trunks.accounts if t.keepalive == "options"]
    if options:
        interval = min(t.keepalive_interval for t in options)
        lines.append('loadmodule "keepalive.so"')
        lines.append(f'modparam("keepalive", "ping_interval", {interval})')
        lines.append(f'modparam("keepalive", "ping_from", "sip:keepalive@{contact}")')
        for trunk in options:
            for host in (trunk.outbound_proxy or trunk.registrar, trunk.outbound_proxy_secondary):
                if host:
                    lines.append(
                        f'modparam("keepalive", "destination",'
                        f' "sip:{host};transport={trunk.transport}")'
                    )
    return "\n".join(lines)


def select_route(trunks: TrunksSettings) -> str:
    """route[TRUNK_WHICH]: sets $var(trunk) for a request from a trunk's address, or for
    one addressed to a trunk's registered Contact user (uac_reg_lookup: l_uuid = name)."""
    lines = ["route[TRUNK_WHICH] {", "\t$var(trunk) = $null;"]
    for trunk in trunks.accounts:
        nets = ",".join(trunk.source_networks())
        if nets:
            select = f'$var(trunk) = "{trunk.name}"; return 1;'
            lines.append(f'\tif (is_in_subnet("$si", "{nets}")) {{ {select} }}')
    names = "|".join(t.name for t in trunks.accounts)
    lines.append(f'\tif ($rU =~ "^({names})$" && uac_reg_lookup("$rU", "$var(aor)")) {{')
    lines.append("\t\t$var(trunk) = $rU;")
    lines.append("\t\treturn 1;")
    lines.append("\t}")
    lines += ["\treturn -1;", "}"]
    return "\n".join(lines)


def did_route(trunks: TrunksSettings) -> str:
    """route[TRUNK_DID]: the raw called number, country code and blocks of $var(trunk)."""
    lines = ["route[TRUNK_DID] {"]
    for trunk in trunks.accounts:
        lines.append(f'\tif ($var(trunk) == "{trunk.name}") {{')
        lines.append(f'\t\tif ($var(did) == "") $var(did) = {_DID_SOURCE[trunk.did_from]};')
        lines.append(f'\t\t$var(ccre) = "^{trunk.country}[0-9]+$";')
        lines.append(f'\t\t$var(cc) = "{trunk.country}";')
        lines.append(f'\t\t$var(blocks) = "{_blocks_regex(trunk)}";')
        lines.append("\t\treturn 1;")
        lines.append("\t}")
    lines += ["\treturn -1;", "}"]
    return "\n".join(lines)


def local_request_route(trunks: TrunksSettings) -> str:
    """event_route[tm:local-request]: Telekom's mediasec headers on uac's REGISTER."""
    mediasec = [t for t in trunks.accounts if t.mediasec]
    lines = ["event_route[tm:local-request] {"]
    for trunk in mediasec:
        lines.append(f'\tif (is_method("REGISTER") && $tU == "{trunk.username}") {{')
        lines.append('\t\tappend_hf("Security-Client: sdes-srtp;mediasec\\r\\n");')
        lines.append('\t\tappend_hf("Proxy-Require: mediasec\\r\\n");')
        lines.append('\t\tappend_hf("Require: mediasec\\r\\n");')
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) if mediasec else ""


def template_parts(trunks: TrunksSettings, contact: str) -> dict[str, str]:
    """The ``{{name}}`` values of the trunk parts (empty strings without trunks)."""
    if not trunks.accounts:
        return {
            "trunk_core": "",
            "trunk_modparams": "",
            "trunk_routes": "",
        }
    routes = [select_route(trunks), did_route(trunks), local_request_route(trunks)]
    return {
        "trunk_core": core_params(trunks),
        "trunk_modparams": module_params(trunks, contact),
        "trunk_routes": "\n\n".join(r for r in routes if r),
    }


__all__ = ["template_parts"]
