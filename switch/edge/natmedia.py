"""The edge's NAT, media relay and encryption parts of the template (issue 15).

:func:`nat_media_defines` and :func:`nat_media_values` add to what
:func:`switch.edge.config.template_values` computes; :func:`tls_profile` is the ``tls.cfg``
with the client profile towards providers (their CA, certificate checked). Pure.
"""

from __future__ import annotations

from pathlib import Path

from switch.edge.settings import EdgeSettings
from switch.errors import EdgeConfigError

NEVER = "^$never^"


def nat_media_defines(settings: EdgeSettings) -> list[str]:
    defines: list[str] = []
    if settings.nat:
        defines.append("#!define WITH_NAT")
    if settings.media_relay_enabled:
        defines.append("#!define WITH_RTPENGINE")
    if settings.tls_ca_file is not None:
        defines.append("#!define WITH_TLS_CLIENT")
    if settings.require_encryption:
        defines.append("#!define WITH_REQUIRE_CRYPTO")
    return defines


def nat_media_values(settings: EdgeSettings, tls_config: Path) -> dict[str, str]:
    users = settings.require_encryption
    crypto = "^(" + "|".join(u.replace("+", "[+]").replace(".", "[.]") for u in users) + ")$"
    return {
        "natping_interval": str(settings.natping_interval),
        "rtpengine_sock": f"udp:{settings.media_relay.ng_listen}",
        "tls_config": str(tls_config),
        "crypto_users_regex": crypto if users else NEVER,
    }


def tls_profile(settings: EdgeSettings) -> str:
    """Kamailio's tls.cfg: the phones' server side, and a client side that checks the
    provider's certificate against ``tls_ca_file`` (tls module README, "config")."""
    if settings.tls_cert is None or settings.tls_key is None or settings.tls_ca_file is None:
        raise EdgeConfigError("tls_ca_file needs tls_listen, tls_cert and tls_key")
    verify = "yes" if settings.tls_verify_server else "no"
    return (
        "[server:default]\n"
        "method = TLSv1.2+\n"
        f"certificate = {settings.tls_cert.absolute()}\n"
        f"private_key = {settings.tls_key.absolute()}\n"
        "verify_certificate = no\n"
        "require_certificate = no\n\n"
        "[client:default]\n"
        "method = TLSv1.2+\n"
        f"verify_certificate = {verify}\n"
        f"require_certificate = {verify}\n"
        f"ca_list = {settings.tls_ca_file.absolute()}\n"
    )
