"""SIP trunks: the ``trunks:`` settings, the provider profiles, the uacreg rows of the edge.

Kamailio's ``uac`` module registers each trunk (table ``uacreg`` in the edge's SQLite,
written here from the settings and the secrets file) and answers the provider's 401/407 on
the workers' outbound INVITEs (``uac_auth`` in ``failure_route[TRUNK_AUTH]``). This module
only validates and derives: the profiles fill in what a provider wants (docs/trunks.md),
an operator's key wins over the profile's. Passwords never appear here except in
:func:`uacreg_rows`, which goes straight into the database (mode 0600).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[a-z][a-z0-9_-]{0,31}$"
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
_USER = re.compile(r"^[A-Za-z0-9+*#._@-]{1,64}$")
_PREFIX = re.compile(r"^[+][0-9]{4,15}$")

_TELEKOM: Final[Mapping[str, Any]] = {
    "expires": 600,
    "keepalive": "options",
    "identity_header": "ppi",
    "number_format": "+cc",
    "forwarding": "history-info",
    "p_early_media": True,
    "did_from": "ruri",
}
"""What both Telekom trunks (1TR118, 1TR119) have in common."""

PROFILES: dict[str, dict[str, Any]] = {
    # Telekom CompanyFlex (1TR119): registration number +49…, auth user …@tel.t-online.de,
    # outbound proxy <12-digit id>.primary/secondary.companyflex.de by NAPTR/SRV, TLS 1.2,
    # SRTP + mediasec, PPI with 403/488 on a wrong identity (TRUNKS.md §1.1).
    "telekom_companyflex": {
        **_TELEKOM,
        "registrar": "tel.t-online.de",
        "transport": "tls",
        "mediasec": True,
    },
    # Telekom DeutschlandLAN SIP-Trunk (1TR118): reg.sip-trunk.telekom.de, TCP only,
    # outbound proxy from DNS, PPI, P-Early-Media (TRUNKS.md §1.1).
    "telekom_deutschlandlan": {
        **_TELEKOM,
        "registrar": "reg.sip-trunk.telekom.de",
        "transport": "tcp",
    },
    # sipgate trunking: From user = SIP-ID (…t0), PPI in 49… without plus ("+49 is a faulty
    # format"), Diversion in E.164 without plus.
    "sipgate": {
        "registrar": "sipconnect.sipgate.de",
        "transport": "udp",
        "expires": 600,
        "keepalive": "options",
        "identity_header": "ppi",
        "number_format": "cc",
        "forwarding": "diversion",
        "from_user_is_auth_user": True,
        "did_from": "ruri",
    },
    # easybell: block extensions arrive as 49… in the R-URI, the main number as the
    # registered Contact user (0049… recommended); callers in national 0… format.
    "easybell": {
        "registrar": "sip.easybell.de",
        "transport": "udp",
        "expires": 600,
        "keepalive": "options",
        "identity_header": "ppi",
        "number_format": "00cc",
        "forwarding": "diversion",
        "did_from": "ruri",
    },
    "generic": {
        "transport": "udp",
        "expires": 3600,
        "keepalive": "options",
        "identity_header": "pai",
        "number_format": "+cc",
        "forwarding": "diversion",
        "did_from": "ruri",
    },
}


def trunk_sources(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` unchanged when each item is an IP address or a CIDR, else ValueError."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"trunk source {item!r} is not an IP address or CIDR") from None
    return value


class NumberBlock(BaseModel):
    """Numbers a trunk carries: ``prefix`` (E.164) plus ``extension_digits`` more digits
    (0 = that one number), and the tenant (dial plan) they belong to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: str
    extension_digits: Annotated[int, Field(ge=0, le=6)] = 0
    tenant: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(f"number block {value!r} is not an E.164 number like +4930123456")
        return value

    def regex(self) -> str:
        digits = f"[0-9]{{{self.extension_digits}}}" if self.extension_digits else ""
        return "[+]" + self.prefix[1:] + digits

    def contains(self, e164: str) -> bool:
        rest = e164[len(self.prefix) :]
        return e164.startswith(self.prefix) and len(rest) == self.extension_digits


class Trunk(BaseModel):
    """One trunk account (docs/trunks.md lists every key; the profile fills the rest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, Field(pattern=NAME)]
    profile: Literal[
        "telekom_companyflex", "telekom_deutschlandlan", "sipgate", "easybell", "generic"
    ] = "generic"
    registrar: str  # host[:port] of the registrar, the domain of the account
    username: str  # the account: registration number / SIP-ID (To/From of REGISTER)
    auth_user: str | None = None  # when the provider wants another user in the digest
    realm: str | None = None  # the digest realm (empty: whatever the 401 says)
    domain: str | None = None  # host of identity URIs; default the registrar's host
    outbound_proxy: str | None = None  # host[:port]; SRV/NAPTR when no port (dns settings)
    outbound_proxy_secondary: str | None = None
    transport: Literal["udp", "tcp", "tls"] = "udp"
    registration: bool = True  # False: no REGISTER (IP-authenticated trunk)
    expires: Annotated[int, Field(ge=10, le=86_400)] = 3600  # 423 raises it (uac)
    retry_interval: Annotated[int, Field(ge=10, le=3600)] = 60  # never 0 (uac: give up)
    keepalive: Literal["options", "crlf", "none"] = "options"
    keepalive_interval: Annotated[int, Field(ge=5, le=3600)] = 30
    numbers: tuple[NumberBlock, ...] = ()
    did_from: Literal["ruri", "to", "ppi"] = "ruri"
    country: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}$")] = "49"
    identity_header: Literal["ppi", "pai", "from"] = "pai"
    number_format: Literal["+cc", "cc", "00cc", "national"] = "+cc"
    clip_no_screening: bool = False
    forwarding: Literal["diversion", "history-info", "both", "none"] = "diversion"
    from_user: str | None = None
    from_user_is_auth_user: bool = False
    p_early_media: bool = False
    mediasec: bool = False
    sources: tuple[str, ...] = ()  # provider addresses (IP/CIDR) that send us calls

    @model_validator(mode="before")
    @classmethod
    def _profile(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        profile = PROFILES.get(str(data.get("profile", "generic")), {})
        return {**profile, **data}

    @field_validator("registrar", "outbound_proxy", "outbound_proxy_secondary", "domain")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError(f"{value!r} is not host or host:port")
        return value

    @field_validator("username", "auth_user", "from_user", "realm")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not _USER.match(value):
            raise ValueError(f"{value!r} may hold only A-Z a-z 0-9 + * # . _ @ -")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return trunk_sources(value)

    @property
    def registrar_host(self) -> str:
        return self.registrar.rsplit(":", 1)[0] if ":" in self.registrar else self.registrar

    @property
    def identity_domain(self) -> str:
        return self.domain or self.registrar_host

    @property
    def presented_from_user(self) -> str | None:
        if self.from_user:
            return self.from_user
        if self.from_user_is_auth_user:
            return (self.auth_user or self.username).split("@", 1)[0]
        return None

    def proxy_uri(self) -> str:
        """Where REGISTER and INVITEs go (uacreg auth_proxy): the outbound proxy, else the
        registrar, with the transport. No port: Kamailio resolves NAPTR/SRV."""
        host = self.outbound_proxy or self.registrar
        return f"sip:{host};transport={self.transport}"

    def source_networks(self) -> tuple[str, ...]:
        """Addresses taken as this trunk's: the configured ones, else IP literals among
        the registrar and proxies (a name is resolved by nobody here: give ``sources``)."""
        if self.sources:
            return self.sources
        found: list[str] = []
        for host in (self.registrar, self.outbound_proxy, self.outbound_proxy_secondary):
            if host is None:
                continue
            bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            try:
                found.append(str(ipaddress.ip_network(bare)))
            except ValueError:
                continue
        return tuple(found)


class TrunksSettings(BaseModel):
    """The ``trunks:`` section: the accounts and the edge-wide knobs of uac and DNS."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    accounts: tuple[Trunk, ...] = ()
    timer_interval: Annotated[int, Field(ge=1, le=600)] = 10  # uac reg_timer_interval, s
    poll_interval: Annotated[float, Field(ge=0.5, le=600)] = 5.0  # supervisor's reg_dump
    dns_naptr: bool = True  # core dns_try_naptr: NAPTR → SRV → A (Telekom)
    dns_srv_lb: bool = True  # core dns_srv_lb: SRV weights
    dns_failover: bool = True  # core use_dns_failover: the secondary SBC on failure

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [t.name for t in self.accounts]
        if len(names) != len(set(names)):
            raise ValueError(f"trunk names must be unique: {names}")
        return self

    def by_name(self) -> dict[str, Trunk]:
        return {t.name: t for t in self.accounts}


def uacreg_rows(trunks: TrunksSettings, passwords: Mapping[str, str]) -> list[dict[str, Any]]:
    """One ``uacreg`` row per registering trunk. ``l_uuid`` is the trunk name (our Contact
    user and the key of ``uac_reg_request_to``). Raises KeyError for a missing password."""
    rows = []
    for trunk in trunks.accounts:
        password = passwords[trunk.name]
        rows.append(
            {
                "l_uuid": trunk.name,
                "l_username": trunk.username,
                "l_domain": trunk.registrar_host,
                "r_username": trunk.username,
                "r_domain": trunk.registrar,
                "realm": trunk.realm or "",
                "auth_username": trunk.auth_user or trunk.username,
                "auth_password": password,
                "auth_ha1": "",
                "auth_proxy": trunk.proxy_uri(),
                "expires": trunk.expires if trunk.registration else 0,
                # flags: 0 = active; reg_delay spreads the first REGISTERs a little.
                "flags": 0 if trunk.registration else 1,
                "reg_delay": 0,
                "contact_addr": "",
                "socket": "",
            }
        )
    return rows


__all__ = ["PROFILES", "NumberBlock", "Trunk", "TrunksSettings", "uacreg_rows"]
