"""``/login``, ``/enrol``, ``/logout`` and ``/api/v1/me``.

Logins (``POST /login``, JSON ``{"user", "password", "code"}``): password (argon2id)
then the TOTP code (RFC 6238). A user without a TOTP secret is sent through ``/enrol``
at the first login: the secret, its ``otpauth://`` URI and a QR code (SVG) are shown
once, and the first good code stores the secret in the users file. Failures are counted
per user and per source address (:class:`switch.access.lockout.Lockout`): each failure
answers a little later than the last, and after five the key is locked (429,
``Retry-After``). A login form is protected against cross-site posts by the double
submit of the ``rw_csrf`` cookie, set when the page is fetched.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from switch.access.passwords import new_totp_secret, totp_step, totp_svg, totp_uri
from switch.access.users import set_totp
from switch.web.request import PRINCIPAL, json_error
from switch.web.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, Session, origin_problem

if TYPE_CHECKING:
    from switch.web.guard import AuthLayer

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
MAX_LOGIN_BODY: Final = 4096


class Login:
    """The login routes of one :class:`~switch.web.guard.AuthLayer` (its users, sessions,
    lockout, passwords and delays, read at each request: tests change them)."""

    def __init__(self, layer: AuthLayer) -> None:
        self.layer = layer
        self.last_step: dict[str, int] = {}  # a TOTP code is good once (RFC 6238 §5.2)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/login", self.get_login),
            web.post("/login", self.post_login),
            web.post("/logout", self.post_logout),
            web.get("/enrol", self.get_enrol),
            web.post("/enrol", self.post_enrol),
            web.get("/api/v1/me", self.get_me),
        ]

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

    @staticmethod
    def _login_csrf_problem(request: web.Request) -> str | None:
        problem = origin_problem(request, "login")
        if problem:
            return problem
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER, "")
        if not cookie or not hmac.compare_digest(cookie, sent):
            return f"cross-site login refused: {CSRF_HEADER} header missing or wrong"
        return None

    async def _fail(
        self, request: web.Request, name: str, keys: Iterable[str], why: str
    ) -> web.Response:
        layer, lockout = self.layer, self.layer.lockout
        assert lockout is not None
        keys = tuple(keys)
        locked = lockout.failed(*keys)
        layer.audit_event("login_failed", request, name or None, reason=why)
        count = max(lockout.failures(k) for k in keys)
        await asyncio.sleep(min(layer.max_fail_delay, layer.fail_delay * count))
        if locked > 0:
            log.warning(
                "login locked for %.0f s after failures: user %r, address %s",
                locked,
                name,
                request.remote,
            )
            return _locked(locked)
        return json_error(401, "user name, password or code is wrong")

    async def post_login(self, request: web.Request) -> web.StreamResponse:
        layer, lockout = self.layer, self.layer.lockout
        assert lockout is not None
        problem = self._login_csrf_problem(request)
        if problem:
            return json_error(403, problem)
        data = await _read_json(request)
        if data is None:
            return json_error(400, 'body must be JSON like {"user", "password", "code"}')
        name, password, code = (str(data.get(k, "")) for k in ("user", "password", "code"))
        keys = (f"user:{name}", f"ip:{request.remote}")
        wait = lockout.retry_after(*keys)
        if wait > 0:
            layer.audit_event("login_locked", request, name or None)
            return _locked(wait)
        user = layer.users.users.get(name)
        async with layer.hashing:
            if user is None:  # an unknown name costs as much time as a known one
                await asyncio.to_thread(layer.passwords.dummy_verify)
                good = False
            else:
                good = await asyncio.to_thread(layer.passwords.verify, user.password, password)
        if user is None:
            return await self._fail(request, name, keys, "unknown user")
        if not good:
            return await self._fail(request, name, keys, "password")
        now = layer.clock()
        csrf = secrets.token_urlsafe(24)
        if user.totp is None:
            session = Session(name, csrf, now, now, user.password, "enrol", new_totp_secret())
            response = web.json_response({"next": "enrol"})
            layer.sessions.start(response, request, session)
            return response
        step = totp_step(user.totp, code, now)
        if step is None or step <= self.last_step.get(name, -1):
            return await self._fail(request, name, keys, "code")
        self.last_step[name] = step
        lockout.succeeded(keys[0])
        response = web.json_response({"next": _next_page(data)})
        layer.sessions.start(response, request, Session(name, csrf, now, now, user.password))
        layer.audit_event("login", request, name, role=user.role.value)
        return response

    def _enrol_session(self, request: web.Request) -> Session | None:
        session = self.layer.sessions.get(request)
        return session if session is not None and session.stage == "enrol" else None

    async def get_enrol(self, request: web.Request) -> web.StreamResponse:
        session = self._enrol_session(request)
        if session is None or session.enrol_secret is None:
            return json_error(401, "log in with your password first")
        if session.enrol_shown:
            return json_error(410, "the secret is shown only once: log in again for a new one")
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
        layer, lockout = self.layer, self.layer.lockout
        assert lockout is not None
        session = self._enrol_session(request)
        if session is None or session.enrol_secret is None:
            return json_error(401, "log in with your password first")
        problem = layer.sessions.csrf_problem(request)
        if problem:
            return json_error(403, problem)
        data = await _read_json(request) or {}
        keys = (f"user:{session.user}", f"ip:{request.remote}")
        wait = lockout.retry_after(*keys)
        if wait > 0:
            return _locked(wait)
        step = totp_step(session.enrol_secret, str(data.get("code", "")), layer.clock())
        if step is None:
            return await self._fail(request, session.user, keys, "enrolment code")
        layer.users_file.save(set_totp(layer.users, session.user, session.enrol_secret))
        self.last_step[session.user] = step
        lockout.succeeded(keys[0])
        session.stage, session.enrol_secret = "full", None
        # The stored password hash is the same object; keep the session valid.
        layer.audit_event("enrolled", request, session.user)
        layer.audit_event("login", request, session.user)
        return web.json_response({"next": _next_page(data)})

    async def post_logout(self, request: web.Request) -> web.StreamResponse:
        sessions = self.layer.sessions
        session = sessions.get(request)
        if session is not None:
            problem = sessions.csrf_problem(request)
            if problem:
                return json_error(403, problem)
            sessions.end(request)
            self.layer.audit_event("logout", request, session.user)
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


def _locked(seconds: float) -> web.Response:
    wait = max(1, int(seconds + 0.999))
    return json_error(
        429, f"too many failed logins: try again in {wait} s", {"Retry-After": str(wait)}
    )


def _next_page(data: dict[str, Any]) -> str:
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
