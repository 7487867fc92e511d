"""Who may do what: roles, actions, principals, scopes — one table, read top to bottom.

Theory of operation
-------------------
The HTTP side (:mod:`switch.web.guard`) asks, per request, *may they?*:
:func:`can` ``(principal, action, tenant, person)`` looks the role up in :data:`RULES`;
nothing else in the code decides. It then hands the handler a :class:`Scope`
(:func:`scope`): the tenants this request may see of an action's data, and, for an
assistant reading calls, the person whose answered calls she sees. Handlers filter
with the scope (in SQL where they can); they never ask the policy again.

Roles (docs/security.md):

========== =================================================================
owner      his own tenants: dial plans, calls, reports, presence of his people,
           his messages (read, done), day/night and forwarding (his page)
assistant  the tenants her service answers for: the presence board, the calls
           she handled, her own presence, the console, messages she takes
ops        everything operational, all tenants' figures; recordings only when
           granted (``grants: [recordings]``)
========== =================================================================

Pure: no I/O. May import nothing of switch but :mod:`switch.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Role(StrEnum):
    OWNER = "owner"
    ASSISTANT = "assistant"
    OPS = "ops"


class Action(StrEnum):
    VIEW_DASHBOARD = "dashboard.view"
    READ_PRESENCE = "presence.read"
    SET_PRESENCE = "presence.set"
    READ_CALLS = "calls.read"
    READ_USAGE = "usage.read"  # reports: calls and service minutes per month
    READ_DIALPLAN = "dialplan.read"
    RELOAD_DIALPLAN = "dialplan.reload"
    READ_RECORDINGS = "recordings.read"
    READ_METRICS = "metrics.read"
    READ_HEALTH = "health.read"
    READ_AUDIT = "audit.read"
    # Issue 18: messages for the owner (Telefonnotiz), the console and the owner's page.
    TAKE_MESSAGE = "messages.take"  # the assistant, for the businesses she serves
    READ_MESSAGES = "messages.read"  # the owner his own; the assistant her businesses'
    DONE_MESSAGE = "messages.done"  # the owner marks one done
    VIEW_CONSOLE = "console.view"  # the assistant's console
    VIEW_OWNER_PAGE = "owner.view"  # the owner's page
    SET_OVERRIDE = "override.set"  # day/night, forwarding of his people
    # Issue 17: click to call (POST /api/v1/calls/dial) for the business, its permissions apply.
    PLACE_CALL = "calls.place"


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone who proved who they are, for one request."""

    name: str
    role: Role
    tenants: frozenset[str]  # for ops: empty means all tenants
    person: str | None = None
    grants: frozenset[str] = frozenset()
    via: str = "session"  # "session", "token" or "open" (no users file)
    language: str | None = None  # the pages' language from the users file (issue 18)

    def sees_tenant(self, tenant: str | None) -> bool:
        """``tenant`` None: all tenants (only an ops principal not scoped to some)."""
        if self.role is Role.OPS and not self.tenants:
            return True
        return tenant is not None and tenant in self.tenants


_OWN_TENANT: Final = frozenset(
    {
        Action.VIEW_DASHBOARD,
        Action.READ_PRESENCE,
        Action.SET_PRESENCE,
        Action.READ_CALLS,
        Action.READ_USAGE,
        Action.READ_DIALPLAN,
        Action.RELOAD_DIALPLAN,
        Action.READ_RECORDINGS,
        Action.READ_MESSAGES,
        Action.DONE_MESSAGE,
        Action.VIEW_OWNER_PAGE,
        Action.SET_OVERRIDE,
        Action.PLACE_CALL,
    }
)
_ASSISTANT: Final = frozenset(
    {
        Action.VIEW_DASHBOARD,
        Action.READ_PRESENCE,
        Action.READ_CALLS,
        Action.TAKE_MESSAGE,
        Action.READ_MESSAGES,
        Action.VIEW_CONSOLE,
        Action.PLACE_CALL,
    }
)
_OPS_GLOBAL: Final = frozenset(
    {Action.READ_METRICS, Action.READ_HEALTH, Action.READ_AUDIT, Action.RELOAD_DIALPLAN}
)
_OPS_ANY_TENANT: Final = frozenset(
    {
        Action.VIEW_DASHBOARD,
        Action.READ_PRESENCE,
        Action.READ_CALLS,
        Action.READ_USAGE,
        Action.READ_DIALPLAN,
    }
)

# The whole policy, one line per role. ``tenant`` None means "no tenant" (metrics) or
# "all tenants" (an unfiltered list): only ops get those. Calls an assistant may read are
# further narrowed to the ones she answered (:func:`handled_by`, through :func:`scope`).
RULES: Final[dict[Role, Callable[[Principal, Action, str | None, str | None], bool]]] = {
    Role.OWNER: lambda p, a, t, _person: a in _OWN_TENANT and t is not None and t in p.tenants,
    Role.ASSISTANT: lambda p, a, t, person: (
        t is not None
        and t in p.tenants
        and (
            a in _ASSISTANT
            or (a is Action.SET_PRESENCE and person is not None and person == p.person)
        )
    ),
    Role.OPS: lambda p, a, t, _person: (
        # metrics, health, audit, reloads: no tenant; an ops token scoped to some tenants
        # still reads these global figures
        (a in _OPS_GLOBAL and t is None)
        # "all tenants" (t None) only when not scoped to some
        or (a in _OPS_ANY_TENANT and p.sees_tenant(t))
        or (a is Action.READ_RECORDINGS and "recordings" in p.grants and p.sees_tenant(t))
    ),
}


def can(
    principal: Principal, action: Action, tenant: str | None, person: str | None = None
) -> bool:
    """May ``principal`` do ``action`` on ``tenant`` (and ``person``, for presence)?"""
    return RULES[principal.role](principal, action, tenant, person)


def handled_by(call: Mapping[str, Any], person: str | None) -> bool:
    """Did ``person`` answer this call (``answered_by`` is ``person`` or ``person.device``)?"""
    answered = call.get("answered_by")
    return bool(person) and isinstance(answered, str) and answered.split(".", 1)[0] == person


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request may see of an action's data, decided once by the guard.

    ``tenants`` None: every tenant (an ops principal not scoped to some, or no users
    file at all); otherwise exactly these (maybe none). ``answered_by`` set: only the
    calls this person answered (an assistant reading calls; "" matches no call).
    """

    tenants: frozenset[str] | None = None
    answered_by: str | None = None

    def sees(self, tenant: object) -> bool:
        return self.tenants is None or (isinstance(tenant, str) and tenant in self.tenants)

    def narrowed(self, tenant: str | None) -> Scope:
        """This scope limited to ``tenant`` (None: unchanged), e.g. for ``?tenant=``."""
        if tenant is None:
            return self
        within = self.tenants if self.tenants is not None else frozenset({tenant})
        return Scope(frozenset({tenant}) & within, self.answered_by)

    def keeps(self, call: Mapping[str, Any]) -> bool:
        """Is this call row within the scope (its tenant, and who answered it)?"""
        if not self.sees(call.get("tenant")):
            return False
        return self.answered_by is None or handled_by(call, self.answered_by)


EVERYTHING: Final = Scope()


def scope(principal: Principal, action: Action) -> Scope:
    """The tenants (and person) whose data of ``action`` ``principal`` may see."""
    # Calls an assistant may read are narrowed to the ones she answered (docs/security.md).
    answered_by = None
    if principal.role is Role.ASSISTANT and action is Action.READ_CALLS:
        answered_by = principal.person or ""
    if can(principal, action, None):
        return Scope(None, answered_by)
    tenants = frozenset(t for t in principal.tenants if can(principal, action, t))
    return Scope(tenants, answered_by)
