"""Secrets: argon2id passwords, TOTP codes (RFC 6238), API tokens, Mosquitto hashes.

Tokens are 32 random bytes: a plain SHA-256 of them is as good as a slow hash (nobody
can guess 256 bits), and it lets the lookup be one dict access.

Pure (no files); may import :mod:`switch.errors`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from switch.errors import UserError

TOKEN_PREFIX: Final = "rwt_"
MIN_PASSWORD: Final = 10


@dataclass(frozen=True)
class Passwords:
    """argon2id (RFC 9106) with the library's defaults; tests may pass cheaper costs."""

    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    _dummy: list[str] = field(default_factory=list, repr=False, compare=False)

    def hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"password is too short: {len(password)} < {MIN_PASSWORD} characters")
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def dummy_verify(self) -> None:
        """Spend the time of a verify for an unknown user, so timing does not tell
        (against a hash made with the same costs, once)."""
        if not self._dummy:
            self._dummy.append(self.hasher.hash(secrets.token_hex(16)))
        self.verify(self._dummy[0], "not-the-password")


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, RFC 4226 §4 R6 recommends at least that


def totp_uri(secret: str, user: str, issuer: str = "Rufweiche") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=issuer)


def totp_step(secret: str, code: str, now: float, window: int = 1) -> int | None:
    """The RFC 6238 time step (30 s) whose code ``code`` is, within ``window`` steps either
    side of ``now`` (§5.2: allow for clock drift), or None. The caller keeps the last step
    used per user and refuses it again: a code is good once (§5.2)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now) // totp.interval
    for candidate in sorted(range(step - window, step + window + 1), key=lambda s: abs(s - step)):
        if hmac.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def totp_ok(secret: str, code: str, now: float, window: int = 1) -> bool:
    return totp_step(secret, code, now, window) is not None


def totp_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (segno: pure Python, no image library)."""
    import segno

    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#17202c"))


def new_token() -> tuple[str, str]:
    """(the token to show once, its SHA-256 hex digest to store)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """Mosquitto's password-file format ``$7$`` (PBKDF2-SHA512), as ``mosquitto_passwd``
    2.0 writes it: ``$7$<iterations>$<base64 salt>$<base64 hash>``."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
