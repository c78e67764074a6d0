"""The signed-in session: signing in (plain error wording, the profile that makes a ``LocalUser``), the
tokens kept fresh and saved in the ``SessionStore`` (sync/session.py).

The access token is refreshed when it is within ``REFRESH_MARGIN`` of expiry, or once after the server
said 401. Refresh tokens rotate, and another process of the same user (the app and ``supportchat sync``)
may have refreshed first: then its saved session is adopted instead of spending our old token.
A refused refresh raises AuthError(refused): the engine shows ``needs-sign-in``. Two-step sign-in
(sync/mfa.py): a right password for an account with a TOTP factor is held in memory as pending until
``verify_code``; nothing is saved before.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sync import mfa
from sync.clock import Clock
from sync.errors import AuthError, RetryableError
from sync.models import LocalUser, as_role
from sync.remote import Remote, Tokens
from sync.session import SessionStore, StoredSession

T = TypeVar("T")

REFRESH_MARGIN = 60  # seconds before expiry at which the access token is refreshed


class Account:
    def __init__(self, remote: Remote, sessions: SessionStore, clock: Clock) -> None:
        self.remote, self.sessions, self.clock = remote, sessions, clock
        self.session: StoredSession | None = None  # the saved session in use, None when signed out
        self.pending: mfa.PendingSignIn | None = None  # a password-only sign-in waiting for its code
        self._refreshing = asyncio.Lock()  # the loop and its push lane may both find the token stale

    async def restore(self) -> LocalUser | None:
        """The saved session's user (its token put to use), with no network; None when there is none."""
        stored = await asyncio.to_thread(self.sessions.load)
        if stored is None:
            return None
        self.session = stored
        await self.remote.use_token(stored.access_token)
        return stored.user

    async def authenticate(self, email: str, password: str) -> tuple[Tokens, LocalUser]:
        """Check the credentials with the server (``save`` keeps the result); raises AuthError with a
        plain message, or ``mfa.CodeRequired`` when the account has two-step sign-in (then ``verify_code``)."""
        self.pending = None
        if not email or not password:
            raise AuthError("enter your email and password", refused=True)
        try:
            tokens = await self.remote.sign_in(email.strip(), password)
        except AuthError as exc:
            raise AuthError(
                "wrong email or password" if exc.status in (400, 401, None) else exc.message,
                code=exc.code,
                status=exc.status,
                refused=True,
            ) from exc
        except RetryableError as exc:
            raise AuthError(f"cannot reach the server to sign in ({exc.message})", code=exc.code) from exc
        if tokens.factor_id is not None:
            self.pending = mfa.PendingSignIn(tokens, email)
            raise mfa.CodeRequired()
        return tokens, await self._user_of(tokens, email)

    async def verify_code(self, code: str) -> tuple[Tokens, LocalUser]:
        """The second step: a current code turns the pending sign-in into an aal2 session. A wrong code
        leaves the step pending (try again); AuthError says why."""
        pending = self.pending
        if pending is None:
            raise AuthError("sign in with your email and password first", refused=True)
        tokens = pending.tokens
        assert tokens.factor_id is not None
        digits = mfa.clean_code(code)
        try:
            verified = await self.remote.mfa_verify(tokens.access_token, tokens.refresh_token, tokens.factor_id, digits)
        except AuthError as exc:
            raise mfa.code_refused(exc) from exc
        except RetryableError as exc:
            raise AuthError(f"cannot reach the server to check the code ({exc.message})", code=exc.code) from exc
        self.pending = None
        return verified, await self._user_of(verified, pending.email)

    async def _user_of(self, tokens: Tokens, email: str) -> LocalUser:
        profile = await self.remote.profile(tokens.user_id) or {}
        return LocalUser(
            tokens.user_id,
            tokens.email or email,
            as_role(profile.get("role")),
            str(profile.get("display_name") or email.split("@", maxsplit=1)[0]),
        )

    async def forget(self) -> None:
        """Delete the saved session (signing out)."""
        await asyncio.to_thread(self.sessions.clear)
        self.session = None
        self.pending = None

    async def save(self, tokens: Tokens, user: LocalUser) -> None:
        self.session = StoredSession(tokens.access_token, tokens.refresh_token, tokens.expires_at, user)
        await asyncio.to_thread(self.sessions.save, self.session)

    async def save_user(self, user: LocalUser) -> None:
        """The saved session's user changed (a new role), its tokens kept."""
        if self.session is not None:
            self.session = dataclasses.replace(self.session, user=user)
            await asyncio.to_thread(self.sessions.save, self.session)

    async def access_token(self) -> str:
        """A current access token, for account actions outside the data path."""
        return (await self.current_session()).access_token

    async def current_session(self) -> StoredSession:
        """The session with a fresh token (for ``mfa.TwoFactor``)."""
        await self.ensure_fresh()
        if self.session is None:
            raise AuthError("sign in first", refused=True)
        return self.session

    async def adopt(self, tokens: Tokens) -> None:
        """New tokens of the signed-in user's session (a verified code): the old refresh token is spent."""
        if self.session is None or tokens.user_id != self.session.user.id:
            raise AuthError("the server answered for another user", refused=True)
        await self.save(tokens, self.session.user)

    async def with_refresh(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()``, and once more after a refresh if the server said the token is no longer good."""
        try:
            return await fn()
        except AuthError as exc:
            if exc.refused:
                raise
            await self.refresh()
            return await fn()

    async def ensure_fresh(self) -> None:
        if self.session is not None and self.session.expires_at - REFRESH_MARGIN <= self.clock.wall():
            await self.refresh()

    async def refresh(self) -> None:
        before = self.session
        async with self._refreshing:
            if self.session is not before and self.session is not None:
                return  # refreshed (or adopted) while we waited: refresh tokens rotate, ours is spent
            await self._refresh()

    async def _refresh(self) -> None:
        session = self.session
        if session is None:
            raise AuthError("no saved session: sign in", refused=True)
        user = session.user
        # another process of the same user may have refreshed already; refresh tokens rotate, so
        # reusing our old one would be refused: adopt theirs
        stored = await asyncio.to_thread(self.sessions.load)
        if (
            stored is not None
            and stored.user.id == user.id
            and stored.refresh_token != session.refresh_token
            and stored.expires_at >= session.expires_at
        ):  # refreshed within the same second counts
            self.session = session = stored
            await self.remote.use_token(stored.access_token)
            if stored.expires_at - REFRESH_MARGIN > self.clock.wall():
                return
        tokens = await self.remote.refresh(session.refresh_token)  # AuthError(refused) or RetryableError
        await self.save(tokens, user)
