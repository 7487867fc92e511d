"""``rufweiche users``: who may use the HTTP API, the dashboard and MQTT devices
(docs/security.md). Everything goes through switch.access (users, policy, passwords,
mosquitto); this module only parses options and prints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from switch.errors import SwitchError


def _users_file(ctx: click.Context) -> Any:
    return ctx.find_object(dict)["users_file"]  # type: ignore[index]


def _edit_users(ctx: click.Context, change: Any) -> Any:
    """Load the users file, apply ``change(users) -> users | (users, ...)``, save it."""

    users_file = _users_file(ctx)
    result = change(users_file.load())
    new = result[0] if isinstance(result, tuple) else result
    users_file.save(new)
    return result


def _read_users(ctx: click.Context) -> Any:
    return _users_file(ctx).load()


def _new_password(prompt: str) -> str:
    from switch.access.passwords import Passwords

    password = str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    return Passwords().hash(password)


@click.group()
@click.option(
    "--users-file",
    type=click.Path(path_type=Path),
    default=Path("var/users.yaml"),
    show_default=True,
    envvar="RUFWEICHE_USERS_FILE",
    help="The users file (next to the other secrets, mode 0600).",
)
@click.pass_context
def users(ctx: click.Context, users_file: Path) -> None:
    """People who may log in, their API tokens, and MQTT device logins."""
    from switch.access.users import UsersFile

    ctx.ensure_object(dict)["users_file"] = UsersFile(users_file)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["owner", "assistant", "ops"]), required=True)
@click.option("--tenant", "tenants", multiple=True, help="A tenant of theirs, repeatable.")
@click.option("--person", help="Their person id in the dial plan (own presence).")
@click.option("--grant", "grants", multiple=True, type=click.Choice(["recordings"]))
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    role: str,
    tenants: tuple[str, ...],
    person: str | None,
    grants: tuple[str, ...],
) -> None:
    """Add a user; the password is asked for, TOTP is set up at the first login."""
    from switch.access.policy import Role
    from switch.access.users import add_user

    password_hash = _new_password(f"password for {name}")
    _edit_users(
        ctx,
        lambda u: add_user(
            u,
            name,
            role=Role(role),
            password_hash=password_hash,
            tenants=tenants,
            person=person,
            grants=grants,
        ),
    )
    click.echo(f"added {role} {name!r}; two-factor setup follows at the first login")


@users.command("passwd")
@click.argument("name")
@click.option("--reset-totp", is_flag=True, help="Also forget the TOTP secret (lost phone).")
@click.pass_context
def users_passwd(ctx: click.Context, name: str, reset_totp: bool) -> None:
    """Set a new password (ends the user's sessions)."""
    from switch.access.users import get_user, set_password

    get_user(_read_users(ctx), name)  # fail before asking for a password
    password_hash = _new_password(f"new password for {name}")
    _edit_users(ctx, lambda u: set_password(u, name, password_hash, reset_totp=reset_totp))
    click.echo(f"password of {name!r} changed" + ("; TOTP reset" if reset_totp else ""))


@users.command("remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove a user and all their tokens (effective at once)."""
    from switch.access.users import remove_user

    _edit_users(ctx, lambda u: remove_user(u, name))
    click.echo(f"removed {name!r} and their tokens")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Users, their role, tenants and whether TOTP is set up."""
    found = _read_users(ctx).users
    if not found:
        click.echo("no users (the HTTP side is open, on loopback only)")
    for name, user in sorted(found.items()):
        tenants = ",".join(user.tenants) or "all"
        totp = "totp" if user.totp else "totp pending"
        person = f" person={user.person}" if user.person else ""
        grants = f" grants={','.join(user.grants)}" if user.grants else ""
        click.echo(f"{name}  {user.role.value}  tenants={tenants}{person}{grants}  {totp}")


@users.group("token")
def users_token() -> None:
    """API tokens (Authorization: Bearer) for scripts and home automation."""


@users_token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What it is for, e.g. 'home assistant'.")
@click.option("--tenant", "tenants", multiple=True, help="Limit to these tenants of theirs.")
@click.pass_context
def token_create(ctx: click.Context, name: str, label: str, tenants: tuple[str, ...]) -> None:
    """Create a token for NAME's role and tenants; it is shown only this once."""

    from switch.access.users import add_token

    _users, token, entry = _edit_users(
        ctx, lambda u: add_token(u, name, label=label, tenants=tenants, now=time.time())
    )
    click.echo(f"token {entry.id} for {name!r} (shown only now, store it safely):")
    click.echo(token)


@users_token.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id (effective with the next request)."""
    from switch.access.users import revoke_token

    _edit_users(ctx, lambda u: revoke_token(u, token_id))
    click.echo(f"token {token_id} revoked")


@users_token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    for entry in _read_users(ctx).tokens:
        tenants = ",".join(entry.tenants) or "all"
        click.echo(f"{entry.id}  {entry.user}  tenants={tenants}  {entry.created}  {entry.label}")


@users.command("mqtt-device")
@click.argument("tenant")
@click.argument("person")
@click.pass_context
def users_mqtt_device(ctx: click.Context, tenant: str, person: str) -> None:
    """Create (or rotate) the MQTT login of PERSON's device; the password is shown once."""
    import secrets

    from switch.access.users import set_mqtt_device

    password = secrets.token_urlsafe(18)
    _users, name = _edit_users(ctx, lambda u: set_mqtt_device(u, tenant, person, password))
    click.echo(f"MQTT user {name}  password {password}")
    click.echo("then run `rufweiche users mqtt-files` and reload Mosquitto (SIGHUP)")


@users.command("mqtt-files")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory.")
@click.option("--switch-user", default="rufweiche", show_default=True)
@click.option(
    "--switch-password-file",
    type=click.Path(path_type=Path),
    help="The switch's MQTT password (settings mqtt.password_file); made up when missing."
    "  [default: OUT/switch.password]",
)
@click.option("--prefix", default="rufweiche/v1", show_default=True, help="Topic prefix.")
@click.pass_context
def users_mqtt_files(
    ctx: click.Context,
    out: Path,
    switch_user: str,
    switch_password_file: Path | None,
    prefix: str,
) -> None:
    """Write Mosquitto's password_file and acl_file (docs/mqtt.md, "Access control")."""
    import os
    import secrets

    from switch.access.mosquitto import mosquitto_files

    secret_path = switch_password_file or out / "switch.password"
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not secret_path.exists():
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        password = secret_path.read_text().strip()
        passwd, acl = mosquitto_files(
            _read_users(ctx),
            switch_user=switch_user,
            switch_password=password,
            prefix=prefix,
        )
        for name, text in (("passwd", passwd), ("acl", acl)):
            fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
    except OSError as exc:
        raise SwitchError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {out / 'passwd'} and {out / 'acl'}; switch password in {secret_path}")
