"""The Mosquitto password and ACL files made from the users file (mosquitto.conf(5))."""

from __future__ import annotations

from switch.access.passwords import mosquitto_hash
from switch.access.users import Users, check_name


def mosquitto_files(
    users: Users, *, switch_user: str, switch_password: str, prefix: str = "rufweiche/v1"
) -> tuple[str, str]:
    """(password file, ACL file) for Mosquitto 2.0 (mosquitto.conf(5): ``password_file``,
    ``acl_file``). The switch may do everything; a person's device may read its tenant's
    topics and the status, and write only its own ``…/presence/set``."""
    check_name("MQTT user", switch_user)
    passwd = [f"{switch_user}:{mosquitto_hash(switch_password)}"]
    acl = [
        "# Written by `rufweiche users mqtt-files`; edits are lost on the next run.",
        "# An ACL file denies whatever it does not allow (mosquitto.conf(5)).",
        "",
        f"user {switch_user}",
        "topic readwrite #",
    ]
    for name, device in sorted(users.mqtt_devices.items()):
        passwd.append(f"{name}:{device.password}")
        acl += [
            "",
            f"user {name}",
            f"topic read {prefix}/status",
            f"topic read {prefix}/{device.tenant}/#",
            f"topic write {prefix}/{device.tenant}/person/{device.person}/presence/set",
            f"topic write {prefix}/{device.tenant}/person/{device.person}/override/set",
        ]
    return "\n".join(passwd) + "\n", "\n".join(acl) + "\n"
