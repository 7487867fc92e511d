"""The access middleware: who is asking, what the route is, and what they may see of it.

Theory of operation
-------------------
:class:`AuthLayer` is handed to :func:`switch.web.app.make_app` (``auth=``), which calls
:meth:`AuthLayer.install`: this middleware in front of every route, plus the login
routes (:mod:`switch.web.login`). Each route declares what it is where it is made
(:func:`declare` with an :class:`Access`: the action for reading, the action for
changing, and where its tenant comes from). Per request the guard decides once:

1. *who*: ``Authorization: Bearer rwt_…`` (a token from the users file) or the session
   cookie (:mod:`switch.web.sessions`). A bad bearer token is a 401 even where no login
   is needed.
2. ``/metrics`` and ``/healthz`` (``Access(loopback=True)``) answer a loopback peer
   without login when the users file says ``options: {metrics: loopback}`` (the
   default), so a local Prometheus keeps working; otherwise they need
   ``metrics.read``/``health.read`` (ops).
3. nobody: 401 with a JSON body for the API, a redirect to ``/login`` for pages.
4. CSRF, for a session (a browser) and any method but GET/HEAD/OPTIONS: the
   ``X-CSRF-Token`` header must equal the session's token (double submit), and an
   ``Origin`` header, when sent, must be our own. Bearer tokens are not sent by browsers
   on their own, so they need no CSRF token.
5. scope: a tenant the principal cannot see is answered 404, exactly like a tenant that
   does not exist (no existence leak); a tenant they see but an action their role may
   not do there is 403. What they may see goes on the request as a
   :class:`~switch.access.policy.Scope` (:data:`switch.web.request.SCOPE`): the handlers
   filter their rows with it; nothing here reads a response.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from aiohttp import web

from presence.http import STATE_SET
from switch.access import policy
from switch.access.audit import AuditLog
from switch.access.lockout import Lockout
from switch.access.passwords import Passwords, token_digest
from switch.access.policy import Action, Principal, Role, Scope, can
from switch.access.users import Users, UsersFile
from switch.errors import AccessError
from switch.web.login import Login
from switch.web.request import AUDIT, PRINCIPAL, SCOPE, RequestAudit, json_error, not_found
from switch.web.sessions import CSRF_COOKIE, CSRF_HEADER, Sessions

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "PUBLIC", "Access", "AuthLayer", "declare"]

log = logging.getLogger(__name__)

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No framing (clickjacking of the login form), no MIME sniffing, no Referer with paths.
HARDENING: Final = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Access:
    """What a route is, declared next to it.

    ``read`` is the action of GET/HEAD (None: a public route, e.g. the login page),
    ``write`` that of the other methods (None: 403). ``tenant`` says where the tenant
    comes from: ``"path"`` (``{tenant}`` in the pattern: 404 unless theirs),
    ``"query"`` (a list narrowed by ``?tenant=``: 404 for another's, 403 when nothing is
    left), ``"all"`` (a list of every tenant, filtered by the handler, never refused) or
    ``"none"`` (a page or a call of theirs: 403 for someone with no tenant). ``page``:
    nobody is sent to ``/login`` instead of a 401. ``denied`` words the 403.
    """

    read: Action | None
    write: Action | None = None
    tenant: Literal["none", "path", "query", "all"] = "none"
    loopback: bool = False
    page: bool = False
    denied: str = ""


PUBLIC: Final = Access(None)
_ACCESS_ATTR: Final = "rufweiche_access"


def declare(route: web.RouteDef, access: Access) -> web.RouteDef:
    """``route`` carrying its :class:`Access` for the guard."""
    inner = route.handler

    async def handler(request: web.Request) -> web.StreamResponse:
        return await inner(request)

    setattr(handler, _ACCESS_ATTR, access)
    return web.RouteDef(route.method, route.path, handler, route.kwargs)


def access_of(request: web.Request) -> Access | None:
    access = getattr(request.match_info.handler, _ACCESS_ATTR, None)
    return access if isinstance(access, Access) else None


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False  # a Unix socket or something odd: not loopback


@dataclass
class AuthLayer:
    """Authentication and scope for one HTTP app. ``AuthLayer(UsersFile(path), audit)``."""

    users_file: UsersFile
    audit: AuditLog | None = None
    clock: Callable[[], float] = time.time
    passwords: Passwords = field(default_factory=Passwords)
    lockout: Lockout | None = None  # None: one on ``clock``
    fail_delay: float = 0.2  # seconds per failure so far, answered later (slows guessing)
    max_fail_delay: float = 2.0
    # argon2 takes ~0.1-0.4 s of CPU: off the event loop (calls must not wait for a
    # login), and at most two at once (a flood of logins must not starve the switch).
    hashing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    sessions: Sessions = field(init=False)
    login: Login = field(init=False)
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.lockout is None:
            self.lockout = Lockout(clock=self.clock)
        self.sessions = Sessions(lambda: self.users, lambda: self.clock())
        self.login = Login(self)

    @classmethod
    def from_path(cls, path: Path, audit: AuditLog | None = None) -> AuthLayer:
        layer = cls(UsersFile(path), audit)
        layer.users_file.load()  # a broken file stops the start, not the first login
        return layer

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        login = self.login
        app.add_routes(
            [
                declare(web.get("/login", login.get_login), PUBLIC),
                declare(web.post("/login", login.post_login), PUBLIC),
                declare(web.post("/logout", login.post_logout), PUBLIC),
                declare(web.get("/enrol", login.get_enrol), PUBLIC),
                declare(web.post("/enrol", login.post_enrol), PUBLIC),
                declare(web.get("/api/v1/me", login.get_me), Access(Action.VIEW_DASHBOARD)),
            ]
        )

    @property
    def users(self) -> Users:
        return self.users_file.load()

    def audit_event(self, event: str, request: web.Request, who: str | None, **detail: Any) -> None:
        if self.audit is not None:
            self.audit.write(event, who=who, source=request.remote, **detail)

    # -- who is it

    def principal(self, request: web.Request) -> Principal | None | Literal[False]:
        """The principal, None for nobody, False for a bad bearer token."""
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return False
            return self.users.principal_for_token(token_digest(token.strip())) or False
        session = self.sessions.get(request)
        if session is None or session.stage != "full":
            return None
        return self.users.principal(session.user)

    def scope_now(self, request: web.Request, action: Action) -> Scope:
        """The scope of ``request``'s login as it is now (asked again by a long stream:
        a revoked token or an ended session stops it with ConnectionResetError at its
        next push, and a changed role or tenant list applies at once)."""
        who = self.principal(request)
        if not isinstance(who, Principal):
            raise ConnectionResetError("the login behind this event stream has ended")
        return policy.scope(who, action)

    # -- the middleware

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guard(request, handler)
        except AccessError as exc:  # e.g. the users file went bad while running
            log.error("auth: %s", exc)
            response = json_error(503, "the users file cannot be read; see the switch's log")
        if not response.prepared:  # an event stream has sent its headers already
            response.headers.update(HARDENING)
        return response

    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else request.path
        access = access_of(request)
        who = self.principal(request)
        if who is False:
            return json_error(
                401, "bearer token unknown or revoked", {"WWW-Authenticate": "Bearer"}
            )
        if access is not None and access.loopback and access.read is not None:
            if self.users.options.metrics == "loopback" and is_loopback(request.remote):
                return await handler(request)
            if who is None:
                return self._unauthenticated(request, page=False)
            if not can(who, access.read, None):
                return json_error(403, f"{who.role.value} may not read {pattern}")
            return await handler(request)
        if route is None or (access is not None and access.read is None):
            return await handler(request)  # public, or a 404/405 aiohttp answers itself
        if who is None:
            return self._unauthenticated(request, page=access is not None and access.page)
        if who.via == "session" and request.method not in SAFE_METHODS:
            problem = self.sessions.csrf_problem(request)
            if problem:
                return json_error(403, problem)
        request[PRINCIPAL] = who
        request[AUDIT] = RequestAudit(self.audit, who.name, request.remote)
        if access is None:
            return await self._undeclared(request, handler, who, pattern)
        return await self._scoped(request, handler, who, access)

    def _unauthenticated(self, request: web.Request, *, page: bool) -> web.StreamResponse:
        if page and request.method == "GET":
            raise web.HTTPFound(f"/login?next={request.path}")
        return json_error(
            401, "login required (session cookie or bearer token)", {"WWW-Authenticate": "Bearer"}
        )

    async def _scoped(
        self, request: web.Request, handler: Handler, who: Principal, access: Access
    ) -> web.StreamResponse:
        read = access.read
        assert read is not None
        denied = json_error(403, f"{who.role.value} may not {access.denied or read.value}")
        if access.tenant == "path":
            return await self._one_tenant(request, handler, who, access)
        if access.tenant == "query":
            wanted = request.query.get("tenant") or None
            if wanted is not None and not who.sees_tenant(wanted):
                return not_found()
            scope = policy.scope(who, read).narrowed(wanted)
            if scope.tenants is not None and not scope.tenants:
                return denied
        else:
            if access.tenant == "none" and not (can(who, read, None) or who.tenants):
                return denied
            scope = policy.scope(who, read)
        request[SCOPE] = scope
        return await handler(request)

    async def _one_tenant(
        self, request: web.Request, handler: Handler, who: Principal, access: Access
    ) -> web.StreamResponse:
        read, write = access.read, access.write
        assert read is not None
        tenant = request.match_info["tenant"]
        person = request.match_info.get("person")
        if not can(who, read, tenant, person):
            return not_found()
        request[SCOPE] = Scope(frozenset({tenant}))
        if read is Action.READ_RECORDINGS and request.method == "GET":
            self.audit_event("data_read", request, who.name, tenant=tenant, what=request.path)
        if request.method in SAFE_METHODS:
            return await handler(request)
        if write is None or not can(who, write, tenant, person):
            return json_error(403, f"{who.role.value} {who.name!r} may not change {request.path}")
        response = await handler(request)
        if response.status == 200 and write is Action.SET_PRESENCE:
            self.audit_event(
                "presence_set",
                request,
                who.name,
                tenant=tenant,
                person=person,
                state=request.get(STATE_SET),
                via=who.via,
            )
        return response

    async def _undeclared(
        self, request: web.Request, handler: Handler, who: Principal, pattern: str
    ) -> web.StreamResponse:
        """A route that declares no :class:`Access` (a plugin added it): deny unless
        clearly safe. With a ``{tenant}``: an owner of it, or ops for reading; without:
        ops for reading (it may list every tenant). Declare new routes with declare()."""
        if pattern not in self._warned:
            self._warned.add(pattern)
            log.warning(
                "auth: route %s declares no access (switch.web.guard); default rule", pattern
            )
        reading = request.method in SAFE_METHODS
        tenant = request.match_info.get("tenant")
        if tenant is not None:
            if not who.sees_tenant(tenant) or who.role is Role.ASSISTANT:
                return not_found()
            if who.role is Role.OWNER or reading:
                return await handler(request)
        elif who.role is Role.OPS and reading:
            return await handler(request)
        return json_error(403, f"{who.role.value} may not use {request.path}")
