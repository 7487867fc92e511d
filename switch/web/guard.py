"""Login, sessions, tokens and scope on the HTTP side (aiohttp middleware and routes).

Theory of operation
-------------------
:class:`AuthLayer` is handed to :func:`switch.web.app.make_app` (``auth=``), which calls
:meth:`AuthLayer.install`: one middleware in front of every route, plus ``/login``,
``/logout``, ``/enrol`` and ``/api/v1/me``. The API handlers themselves stay unaware
of users; the middleware decides, by the route's pattern (:data:`SCOPES`), which
:class:`~switch.access.auth.Action` a request is and for which tenant, and asks
:func:`switch.access.auth.can`. Per request:

1. *who*: ``Authorization: Bearer rwt_…`` (a token from the users file) or the session
   cookie. A bad bearer token is a 401 even where no login is needed.
2. ``/metrics`` and ``/healthz`` answer a loopback peer without login when the users
   file says ``options: {metrics: loopback}`` (the default), so a local Prometheus
   keeps working; otherwise they need ``metrics.read``/``health.read`` (ops).
3. nobody: 401 with a JSON body for the API, a redirect to ``/login`` for pages.
4. CSRF, for a session (a browser) and any method but GET/HEAD/OPTIONS: the
   ``X-CSRF-Token`` header must equal the session's token (the page reads it from the
   ``rw_csrf`` cookie: double submit), and an ``Origin`` header, when sent, must be our
   own. The session cookie is ``SameSite=Strict`` besides. Bearer tokens are not sent by
   browsers on their own, so they need no CSRF token.
5. scope: a tenant the principal cannot see is answered 404, exactly like a tenant that
   does not exist (no existence leak); a tenant they see but an action their role may
   not do there is 403.

Logins (``POST /login``, JSON ``{"user", "password", "code"}``): password (argon2id)
then the TOTP code (RFC 6238). A user without a TOTP secret is sent through ``/enrol``
at the first login: the secret, its ``otpauth://`` URI and a QR code (SVG) are shown
once, and the first good code stores the secret in the users file. Failures are counted
per user and per source address (:class:`switch.access.auth.Lockout`): each failure answers a
little later than the last, and after five the key is locked (429, ``Retry-After``).

Sessions live in memory: a restart logs everybody out, which is fine for a switch.
A session ends on logout, after ``session_hours``, after ``idle_minutes`` without a
request, and as soon as its user is removed or gets a new password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from aiohttp import web

from switch.access.audit import AuditLog
from switch.access.auth import (
    Action,
    AuthError,
    Lockout,
    Passwords,
    Principal,
    Role,
    Users,
    UsersFile,
    can,
    handled_by,
    new_totp_secret,
    set_totp,
    token_digest,
    totp_step,
    totp_svg,
    totp_uri,
)

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
SESSION_COOKIE: Final = "rw_session"
CSRF_COOKIE: Final = "rw_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_LOGIN_BODY: Final = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL: Final = web.RequestKey("principal", Principal)  # who, for the handlers

# Routes anyone may reach: the login page and what it needs. /static holds only the
# page code (no data); "/" merely redirects.
PUBLIC: Final = frozenset({"/", "/login", "/logout", "/enrol", "/static"})
# No framing (clickjacking of the login form), no MIME sniffing, no Referer with paths.
HARDENING: Final = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
OPEN_ON_LOOPBACK: Final = {"/metrics": Action.READ_METRICS, "/healthz": Action.READ_HEALTH}

# What a route is, by its pattern: (action for GET, action for other methods). Routes that
# carry a tenant in the path are checked against it; the others are checked for "no
# tenant" (ops) or narrowed to the principal's tenants by a filter below.
SCOPES: Final[dict[str, tuple[Action, Action | None]]] = {
    "/dashboard": (Action.VIEW_DASHBOARD, None),
    "/api/v1/events": (Action.VIEW_DASHBOARD, None),
    "/api/v1/me": (Action.VIEW_DASHBOARD, None),
    "/api/v1/calls": (Action.READ_CALLS, None),
    "/api/v1/usage": (Action.READ_USAGE, None),
    "/api/v1/presence": (Action.READ_PRESENCE, None),
    "/api/v1/tenants/{tenant}/people/{person}/presence": (
        Action.READ_PRESENCE,
        Action.SET_PRESENCE,
    ),
    "/api/v1/voicemails": (Action.READ_RECORDINGS, None),  # switch/supervisor/voicemail.py
    "/files/voicemail/{tenant}/{name}": (Action.READ_RECORDINGS, None),
    # The dictation box: marking one done is checked against its tenant by the handler.
    "/api/v1/dictations": (Action.READ_RECORDINGS, None),
    "/api/v1/dictations/{id}/done": (Action.READ_RECORDINGS, Action.READ_RECORDINGS),
    "/files/dictation/{tenant}/{name}": (Action.READ_RECORDINGS, None),
}
# List APIs narrowed by ?tenant=: the JSON key of the rows, the action, the sort key.
LISTS: Final[dict[str, tuple[str, Action, str]]] = {
    "/api/v1/calls": ("calls", Action.READ_CALLS, "started_wall"),
    "/api/v1/voicemails": ("voicemails", Action.READ_RECORDINGS, "started_at"),
    "/api/v1/dictations": ("dictations", Action.READ_RECORDINGS, "started_at"),
}


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False  # a Unix socket or something odd: not loopback


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _not_found() -> web.Response:
    # The same body as for a tenant that does not exist: nothing to tell them apart.
    return _json_error(404, "not found")


@dataclass(slots=True)
class Session:
    user: str
    csrf: str
    created: float
    last_seen: float
    password: str  # the hash at login: a new password ends the session
    stage: Literal["full", "enrol"] = "full"
    enrol_secret: str | None = None
    enrol_shown: bool = False


@dataclass
class AuthLayer:
    """Authentication and scope for one HTTP app. ``AuthLayer(UsersFile(path), audit)``."""

    users_file: UsersFile
    audit: AuditLog | None = None
    clock: Callable[[], float] = time.time
    passwords: Passwords = field(default_factory=Passwords)
    lockout: Lockout | None = None
    fail_delay: float = 0.2  # seconds per failure so far, answered later (slows guessing)
    max_fail_delay: float = 2.0
    sessions: dict[str, Session] = field(default_factory=dict)
    # argon2 takes ~0.1-0.4 s of CPU: off the event loop (calls must not wait for a
    # login), and at most two at once (a flood of logins must not starve the switch).
    _hashing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    _last_step: dict[str, int] = field(default_factory=dict)  # a TOTP code is good once
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.lockout is None:
            self.lockout = Lockout(clock=self.clock)

    @classmethod
    def from_path(cls, path: Path, audit: AuditLog | None = None) -> AuthLayer:
        layer = cls(UsersFile(path), audit)
        layer.users_file.load()  # a broken file stops the start, not the first login
        return layer

    # -- wiring

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.add_routes(
            [
                web.get("/login", self.get_login),
                web.post("/login", self.post_login),
                web.post("/logout", self.post_logout),
                web.get("/enrol", self.get_enrol),
                web.post("/enrol", self.post_enrol),
                web.get("/api/v1/me", self.get_me),
            ]
        )

    @property
    def users(self) -> Users:
        return self.users_file.load()

    def _audit(self, event: str, request: web.Request, who: str | None, **detail: Any) -> None:
        if self.audit is not None:
            self.audit.write(event, who=who, source=request.remote, **detail)

    # -- who is it

    def _session(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        key = hashlib.sha256(cookie.encode()).hexdigest()
        session = self.sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        options = self.users.options
        user = self.users.users.get(session.user)
        if (
            user is None
            or user.password != session.password
            or now - session.created > options.session_hours * 3600
            or now - session.last_seen > options.idle_minutes * 60
        ):
            del self.sessions[key]
            return None
        session.last_seen = now
        return session

    def principal(self, request: web.Request) -> Principal | None | Literal[False]:
        """The principal, None for nobody, False for a bad bearer token."""
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return False
            return self.users.principal_for_token(token_digest(token.strip())) or False
        session = self._session(request)
        if session is None or session.stage != "full":
            return None
        return self.users.principal(session.user)

    # -- the middleware

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guard(request, handler)
        except AuthError as exc:  # e.g. the users file went bad while running
            log.error("auth: %s", exc)
            response = _json_error(503, "the users file cannot be read; see the switch's log")
        if not response.prepared:  # an event stream has sent its headers already
            response.headers.update(HARDENING)
        return response

    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else request.path
        top = "/" + pattern.split("/", 2)[1] if pattern.startswith("/static") else pattern
        who = self.principal(request)
        if who is False:
            return _json_error(
                401, "bearer token unknown or revoked", {"WWW-Authenticate": "Bearer"}
            )
        open_action = OPEN_ON_LOOPBACK.get(pattern)
        if open_action is not None:
            if self.users.options.metrics == "loopback" and is_loopback(request.remote):
                return await handler(request)
            if who is None:
                return self._unauthenticated(request, page=False)
            if not can(who, open_action, None):
                return _json_error(403, f"{who.role.value} may not read {pattern}")
            return await handler(request)
        if top in PUBLIC or route is None:
            return await handler(request)  # public, or a 404/405 aiohttp answers itself
        if who is None:
            return self._unauthenticated(request, page=pattern == "/dashboard")
        if who.via == "session" and request.method not in SAFE_METHODS:
            problem = self._csrf_problem(request)
            if problem:
                return _json_error(403, problem)
        request[PRINCIPAL] = who
        return await self._scoped(request, handler, who, pattern)

    def _unauthenticated(self, request: web.Request, *, page: bool) -> web.StreamResponse:
        if page and request.method == "GET":
            raise web.HTTPFound(f"/login?next={request.path}")
        return _json_error(
            401, "login required (session cookie or bearer token)", {"WWW-Authenticate": "Bearer"}
        )

    def _csrf_problem(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return f"cross-site request refused: Origin {origin!r}"
        session = self._session(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if session is None or not hmac.compare_digest(sent, session.csrf):
            return f"cross-site request refused: {CSRF_HEADER} header missing or wrong"
        return None

    async def _scoped(
        self, request: web.Request, handler: Handler, who: Principal, pattern: str
    ) -> web.StreamResponse:
        read, write = SCOPES.get(pattern, (None, None))
        tenant = request.match_info.get("tenant")
        person = request.match_info.get("person")
        if pattern in LISTS:
            return await self._tenant_list(request, handler, who, pattern)
        if pattern == "/api/v1/usage":
            return await self._usage(request, handler, who)
        if pattern == "/api/v1/presence":
            return await self._filter_presence(request, handler, who)
        if read is None:
            return await self._unlisted(request, handler, who, pattern, tenant)
        if tenant is None:
            if not (can(who, read, None) or who.tenants):
                return _json_error(403, f"{who.role.value} may not {read.value}")
            return await handler(request)
        if not can(who, read, tenant, person):
            return _not_found()
        if read is Action.READ_RECORDINGS and request.method == "GET":
            self._audit("data_read", request, who.name, tenant=tenant, what=request.path)
        if request.method not in SAFE_METHODS:
            if write is None or not can(who, write, tenant, person):
                return _json_error(
                    403, f"{who.role.value} {who.name!r} may not change {request.path}"
                )
            response = await handler(request)
            if response.status == 200 and write is Action.SET_PRESENCE:
                state = _json_body(response).get("state")
                self._audit(
                    "presence_set",
                    request,
                    who.name,
                    tenant=tenant,
                    person=person,
                    state=state,
                    via=who.via,
                )
            return response
        return await handler(request)

    async def _unlisted(
        self,
        request: web.Request,
        handler: Handler,
        who: Principal,
        pattern: str,
        tenant: str | None,
    ) -> web.StreamResponse:
        """A route :data:`SCOPES` does not name (another part added it): deny unless
        clearly safe. With a ``{tenant}``: an owner of it, or ops for reading; without:
        ops for reading (it may list every tenant). Name new routes in SCOPES."""
        if pattern not in self._warned:
            self._warned.add(pattern)
            log.warning("auth: route %s is not in switch.web.guard.SCOPES; default rule", pattern)
        reading = request.method in SAFE_METHODS
        if tenant is not None:
            if not who.sees_tenant(tenant) or who.role is Role.ASSISTANT:
                return _not_found()
            if who.role is Role.OWNER or reading:
                return await handler(request)
        elif who.role is Role.OPS and reading:
            return await handler(request)
        return _json_error(403, f"{who.role.value} may not use {request.path}")

    async def _tenant_list(
        self, request: web.Request, handler: Handler, who: Principal, pattern: str
    ) -> web.StreamResponse:
        """A list API with ``?tenant=``: narrowed to the tenants the principal may read."""
        key, action, order = LISTS[pattern]
        wanted = request.query.get("tenant") or None
        if wanted is not None and not who.sees_tenant(wanted):
            return _not_found()
        if wanted is not None and not can(who, action, wanted):
            return _json_error(403, f"{who.role.value} may not {action.value}")
        if wanted is not None or can(who, action, None):
            response = await handler(request)
            rows = _json_body(response).get(key) if response.status == 200 else None
            if rows is None:
                return response
        else:
            # Several tenants and no ?tenant=: one query per tenant of theirs, merged.
            tenants = [t for t in sorted(who.tenants) if can(who, action, t)]
            if not tenants:
                return _json_error(403, f"{who.role.value} may not {action.value}")
            rows = []
            for tenant in tenants:
                one = request.clone(rel_url=request.rel_url.update_query(tenant=tenant))
                response = await handler(one)
                if response.status != 200:
                    return response
                rows += _json_body(response).get(key, [])
            rows.sort(key=lambda row: row.get(order) or 0, reverse=True)
            limit = request.query.get("limit", "100")
            rows = rows[: int(limit) if limit.isdigit() else 100]
        if action is Action.READ_CALLS and who.role is Role.ASSISTANT:
            rows = [c for c in rows if handled_by(c, who.person)]
        self._audit("data_read", request, who.name, tenant=wanted, what=key, rows=len(rows))
        return _dumps({key: rows})

    async def _usage(
        self, request: web.Request, handler: Handler, who: Principal
    ) -> web.StreamResponse:
        wanted = request.query.get("tenant") or None
        if wanted is not None and not who.sees_tenant(wanted):
            return _not_found()
        if not any(can(who, Action.READ_USAGE, t) for t in (wanted, *sorted(who.tenants))):
            return _json_error(403, f"{who.role.value} may not read usage reports")
        response = await handler(request)
        if response.status != 200:
            return response
        body = _json_body(response)
        body["tenants"] = [
            row for row in body.get("tenants", []) if self._sees(who, Action.READ_USAGE, row)
        ]
        self._audit("data_read", request, who.name, tenant=wanted, what="usage")
        return _dumps(body)

    @staticmethod
    def _sees(who: Principal, action: Action, row: dict[str, Any]) -> bool:
        tenant = row.get("tenant")
        return isinstance(tenant, str) and can(who, action, tenant)

    async def _filter_presence(
        self, request: web.Request, handler: Handler, who: Principal
    ) -> web.StreamResponse:
        response = await handler(request)
        if response.status != 200:
            return response
        body = _json_body(response)
        body["tenants"] = {
            t: people
            for t, people in body.get("tenants", {}).items()
            if can(who, Action.READ_PRESENCE, t)
        }
        return _dumps(body)

    def scoped_snapshot(self, request: web.Request, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The dashboard state as this principal may see it (for the event stream).

        Asked again for every snapshot: a stream whose token was revoked, or whose
        session ended, stops at its next push (ConnectionResetError ends the stream in
        :func:`switch.web.app.make_app`), and a changed role or tenant list applies at once.
        """
        who = self.principal(request)
        if not isinstance(who, Principal):
            raise ConnectionResetError("the login behind this event stream has ended")
        if can(who, Action.READ_CALLS, None):
            return snapshot

        def mine(tenant: object) -> bool:
            return isinstance(tenant, str) and can(who, Action.READ_PRESENCE, tenant)

        scoped = dict(snapshot)
        scoped["active_calls"] = [c for c in snapshot.get("active_calls", []) if mine(c["tenant"])]
        scoped["presence"] = {t: b for t, b in snapshot.get("presence", {}).items() if mine(t)}
        scoped["today"] = [c for c in snapshot.get("today", []) if mine(c["tenant"])]
        return scoped

    # -- login, enrolment, logout

    def _new_session(
        self,
        response: web.StreamResponse,
        request: web.Request,
        session: Session,
    ) -> None:
        cookie = secrets.token_urlsafe(32)
        self.sessions[hashlib.sha256(cookie.encode()).hexdigest()] = session
        secure = request.secure or self.users.options.secure_cookies == "always"
        max_age = int(self.users.options.session_hours * 3600)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            httponly=True,
            samesite="Strict",
            secure=secure,
            path="/",
            max_age=max_age,
        )
        # Readable by the page's script (double-submit CSRF), useless to another site.
        response.set_cookie(
            CSRF_COOKIE,
            session.csrf,
            httponly=False,
            samesite="Strict",
            secure=secure,
            path="/",
            max_age=max_age,
        )

    def _end_session(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        return self.sessions.pop(hashlib.sha256(cookie.encode()).hexdigest(), None)

    async def get_login(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "login.html")
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE,
                secrets.token_urlsafe(16),
                samesite="Strict",
                secure=request.secure,
                path="/",
            )
        return response

    def _login_csrf_problem(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return f"cross-site login refused: Origin {origin!r}"
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER, "")
        if not cookie or not hmac.compare_digest(cookie, sent):
            return f"cross-site login refused: {CSRF_HEADER} header missing or wrong"
        return None

    async def _fail(
        self,
        request: web.Request,
        name: str,
        keys: Iterable[str],
        why: str,
    ) -> web.Response:
        assert self.lockout is not None
        keys = tuple(keys)
        locked = self.lockout.failed(*keys)
        self._audit("login_failed", request, name or None, reason=why)
        count = max(self.lockout.failures(k) for k in keys)
        await asyncio.sleep(min(self.max_fail_delay, self.fail_delay * count))
        if locked > 0:
            log.warning(
                "login locked for %.0f s after failures: user %r, address %s",
                locked,
                name,
                request.remote,
            )
            return self._locked(locked)
        return _json_error(401, "user name, password or code is wrong")

    @staticmethod
    def _locked(seconds: float) -> web.Response:
        wait = max(1, int(seconds + 0.999))
        return _json_error(
            429, f"too many failed logins: try again in {wait} s", {"Retry-After": str(wait)}
        )

    async def post_login(self, request: web.Request) -> web.StreamResponse:
        assert self.lockout is not None
        problem = self._login_csrf_problem(request)
        if problem:
            return _json_error(403, problem)
        data = await _read_json(request)
        if data is None:
            return _json_error(400, 'body must be JSON like {"user", "password", "code"}')
        name, password, code = (str(data.get(k, "")) for k in ("user", "password", "code"))
        keys = (f"user:{name}", f"ip:{request.remote}")
        wait = self.lockout.retry_after(*keys)
        if wait > 0:
            self._audit("login_locked", request, name or None)
            return self._locked(wait)
        user = self.users.users.get(name)
        async with self._hashing:
            if user is None:  # an unknown name costs as much time as a known one
                await asyncio.to_thread(self.passwords.dummy_verify)
                good = False
            else:
                good = await asyncio.to_thread(self.passwords.verify, user.password, password)
        if user is None:
            return await self._fail(request, name, keys, "unknown user")
        if not good:
            return await self._fail(request, name, keys, "password")
        now = self.clock()
        csrf = secrets.token_urlsafe(24)
        if user.totp is None:
            session = Session(name, csrf, now, now, user.password, "enrol", new_totp_secret())
            response = web.json_response({"next": "enrol"})
            self._new_session(response, request, session)
            return response
        step = totp_step(user.totp, code, now)
        if step is None or step <= self._last_step.get(name, -1):
            return await self._fail(request, name, keys, "code")
        self._last_step[name] = step
        self.lockout.succeeded(keys[0])
        response = web.json_response({"next": _next_page(request, data)})
        self._new_session(response, request, Session(name, csrf, now, now, user.password))
        self._audit("login", request, name, role=user.role.value)
        return response

    def _enrol_session(self, request: web.Request) -> Session | None:
        session = self._session(request)
        return session if session is not None and session.stage == "enrol" else None

    async def get_enrol(self, request: web.Request) -> web.StreamResponse:
        session = self._enrol_session(request)
        if session is None or session.enrol_secret is None:
            return _json_error(401, "log in with your password first")
        if session.enrol_shown:
            return _json_error(410, "the secret is shown only once: log in again for a new one")
        session.enrol_shown = True
        uri = totp_uri(session.enrol_secret, session.user)
        return web.json_response(
            {
                "user": session.user,
                "secret": session.enrol_secret,
                "uri": uri,
                "svg": totp_svg(uri),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def post_enrol(self, request: web.Request) -> web.StreamResponse:
        assert self.lockout is not None
        session = self._enrol_session(request)
        if session is None or session.enrol_secret is None:
            return _json_error(401, "log in with your password first")
        problem = self._csrf_problem(request)
        if problem:
            return _json_error(403, problem)
        data = await _read_json(request) or {}
        keys = (f"user:{session.user}", f"ip:{request.remote}")
        wait = self.lockout.retry_after(*keys)
        if wait > 0:
            return self._locked(wait)
        step = totp_step(session.enrol_secret, str(data.get("code", "")), self.clock())
        if step is None:
            return await self._fail(request, session.user, keys, "enrolment code")
        self.users_file.save(set_totp(self.users, session.user, session.enrol_secret))
        self._last_step[session.user] = step
        self.lockout.succeeded(keys[0])
        session.stage, session.enrol_secret = "full", None
        # The stored password hash is the same object; keep the session valid.
        self._audit("enrolled", request, session.user)
        self._audit("login", request, session.user)
        return web.json_response({"next": _next_page(request, data)})

    async def post_logout(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session is not None:
            problem = self._csrf_problem(request)
            if problem:
                return _json_error(403, problem)
            self._end_session(request)
            self._audit("logout", request, session.user)
        response = web.json_response({"next": "/login"})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        who = request[PRINCIPAL]
        return web.json_response(
            {
                "user": who.name,
                "role": who.role.value,
                "tenants": sorted(who.tenants),
                "person": who.person,
                "via": who.via,
            }
        )


def _next_page(request: web.Request, data: dict[str, Any]) -> str:
    """Where to go after login: a local path only (no open redirect)."""
    target = str(data.get("next") or "/dashboard")
    return target if target.startswith("/") and not target.startswith("//") else "/dashboard"


async def _read_json(request: web.Request) -> dict[str, Any] | None:
    body = await request.content.read(MAX_LOGIN_BODY + 1)
    if len(body) > MAX_LOGIN_BODY:
        return None
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _json_body(response: web.StreamResponse) -> dict[str, Any]:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | bytearray):
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _dumps(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, default=str))
