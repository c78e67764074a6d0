"""Two-step sign-in and TOTP factors (Supabase Auth MFA) for the signed-in user.

Supabase Auth signs a password in at assurance level ``aal1``; a user with a verified TOTP factor
reaches ``aal2`` by answering a challenge with a current code (``auth.mfa.challenge_and_verify``).
The engine keeps the half-done sign-in in memory only (``PendingSignIn``): nothing is saved and no
cache opens until the code is verified, so an abandoned code step leaves the app signed out.

``TwoFactor`` is the engine's collaborator for the settings page: list, enrol (secret and otpauth
URI), confirm the first code, and remove a factor after a current code. Confirming or answering a
challenge ends in new tokens (the same server session, now ``aal2``, with a rotated refresh token),
which the engine adopts at once: the refresh token it held is spent. Refreshes keep ``aal2``
because the level belongs to the server-side session, not to the token.

A project may require it of staff (``app_settings.staff_require_mfa``, migration 20261130000600): RLS
then hides everything from a staff session below ``aal2``; ``staff_code_missing`` tells the app to say so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync.errors import AuthError
from sync.models import Enrollment, Factor

if TYPE_CHECKING:
    from sync.remote import Remote, Tokens
    from sync.session import StoredSession

__all__ = ["CodeRequired", "Enrollment", "Factor", "PendingSignIn", "TwoFactor", "assurance_level"]


@dataclass(frozen=True)
class PendingSignIn:
    """A password that was right for an account that also needs a code; held in memory only."""

    tokens: Tokens
    email: str


class CodeRequired(AuthError):
    """The password was right; the account has two-step sign-in, so a code from its authenticator is due."""

    def __init__(self) -> None:
        super().__init__("enter the 6-digit code from your authenticator app", code="mfa_required", refused=True)


def code_refused(exc: AuthError) -> AuthError:
    """The server's refusal of a code as a sentence the user can act on."""
    if exc.code == "mfa_verification_failed":
        message = "that code is not right (or has expired): enter the current code from your authenticator app"
    elif exc.code in ("mfa_challenge_expired", "mfa_ip_address_mismatch", "mfa_factor_not_found"):
        message = "that code was already used or has expired: enter the next code from your authenticator app"
    else:
        message = exc.message
    return AuthError(message, code=exc.code, status=exc.status, refused=True)


def clean_code(code: str) -> str:
    """Six digits as typed (spaces allowed, as authenticator apps show them), else an AuthError."""
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        raise AuthError("enter the 6 digits your authenticator app shows", code="validation_failed", refused=True)
    return digits


def assurance_level(access_token: str) -> str:
    """The token's `aal` claim (read, not verified: the server verifies; this only steers the UI)."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return "aal1"
    return str(claims.get("aal") or "aal1") if isinstance(claims, dict) else "aal1"


def staff_code_missing(settings: Mapping[str, object], role: str, access_token: str) -> bool:
    """True when the project requires two-step sign-in for staff (``app_settings.staff_require_mfa``) and
    this staff session has not passed it: the server then shows it nothing (RLS), and the app says why."""
    return (
        bool(settings.get("staff_require_mfa"))
        and role in ("agent", "admin")
        and (assurance_level(access_token) != "aal2")
    )


class TwoFactor:
    """The signed-in user's TOTP factors, on the engine's session (``SyncEngine.two_factor``)."""

    def __init__(
        self,
        remote: Remote,
        session: Callable[[], Awaitable[StoredSession]],
        adopt: Callable[[Tokens], Awaitable[None]],
    ) -> None:
        self._remote = remote
        self._session = session  # a current session, refreshed when close to expiry
        self._adopt = adopt  # the engine saves and uses new tokens

    async def factors(self) -> list[Factor]:
        session = await self._session()
        return await self._remote.mfa_factors(session.access_token, session.refresh_token)

    async def enroll(self, friendly_name: str = "") -> Enrollment:
        session = await self._session()
        return await self._remote.mfa_enroll(session.access_token, session.refresh_token, friendly_name)

    async def confirm(self, factor_id: str, code: str) -> None:
        """Verify the first code of a new factor: it becomes verified and this session aal2."""
        await self._verify(factor_id, code)

    async def remove(self, factor_id: str, code: str) -> None:
        """Unenrol after a current code (Supabase Auth unenrols a verified factor only at aal2)."""
        await self._verify(factor_id, code)
        session = await self._session()
        await self._remote.mfa_unenroll(session.access_token, session.refresh_token, factor_id)

    async def _verify(self, factor_id: str, code: str) -> None:
        digits = clean_code(code)
        session = await self._session()
        try:
            tokens = await self._remote.mfa_verify(session.access_token, session.refresh_token, factor_id, digits)
        except AuthError as exc:
            raise code_refused(exc) from exc
        await self._adopt(tokens)
