"""Browser sessions: in memory, keyed by the SHA-256 of the cookie, with double-submit CSRF.

A restart logs everybody out, which is fine for a switch. A session ends on logout,
after ``session_hours``, after ``idle_minutes`` without a request, and as soon as its
user is removed or gets a new password. The session cookie is ``HttpOnly`` and
``SameSite=Strict``; its CSRF token is also set as the readable ``rw_csrf`` cookie, which
the page sends back in ``X-CSRF-Token`` for every request that changes something.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from aiohttp import web

from switch.access.users import Users

SESSION_COOKIE: Final = "rw_session"
CSRF_COOKIE: Final = "rw_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"


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


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def origin_problem(request: web.Request, what: str) -> str | None:
    """An ``Origin`` header, when sent, must be our own."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return f"cross-site {what} refused: Origin {origin!r}"
    return None


@dataclass
class Sessions:
    """The live sessions of one app; ``users`` reads the users file as it is now."""

    users: Callable[[], Users]
    clock: Callable[[], float]
    by_key: dict[str, Session] = field(default_factory=dict)

    def get(self, request: web.Request) -> Session | None:
        """The request's session, if it is still good (touching it)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        key = _key(cookie)
        session = self.by_key.get(key)
        if session is None:
            return None
        now = self.clock()
        users = self.users()
        options = users.options
        user = users.users.get(session.user)
        if (
            user is None
            or user.password != session.password
            or now - session.created > options.session_hours * 3600
            or now - session.last_seen > options.idle_minutes * 60
        ):
            del self.by_key[key]
            return None
        session.last_seen = now
        return session

    def start(self, response: web.StreamResponse, request: web.Request, session: Session) -> None:
        cookie = secrets.token_urlsafe(32)
        self.by_key[_key(cookie)] = session
        options = self.users().options
        secure = request.secure or options.secure_cookies == "always"
        max_age = int(options.session_hours * 3600)
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

    def end(self, request: web.Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        return self.by_key.pop(_key(cookie), None)

    def csrf_problem(self, request: web.Request) -> str | None:
        """Why this state-changing request of a session is refused, or None."""
        problem = origin_problem(request, "request")
        if problem:
            return problem
        session = self.get(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if session is None or not hmac.compare_digest(sent, session.csrf):
            return f"cross-site request refused: {CSRF_HEADER} header missing or wrong"
        return None
