"""Account actions beside the sync engine's data path: a password reset by emailed code, accepting an
invitation, and an admin inviting a teammate or changing one's role.

The sync engine owns the signed-in session and everything that syncs; these actions are one-off calls
to Supabase Auth (GoTrue) and a few PostgREST calls, so they live in this small adapter instead of
growing the engine. Each uses its own short-lived `supabase_auth` client with no stored session
(implicit flow: the emailed code is typed, not a link followed), and nothing here ever holds a
service key: the invitee's role comes from `public.invitations`, which only admins may write, via
`accept_invitation()` (see `sql/migrations/20261129000700_invitations.sql`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError
from postgrest.types import ReturnMethod
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthError as GoTrueError
from supabase_auth.types import Session

log = logging.getLogger(__name__)

Role = Literal["agent", "admin", "customer"]
TIMEOUT = 20.0


class AccountError(Exception):
    """A refused or failed account action; the message is a sentence for the user."""


def _sentence(exc: BaseException) -> str:
    text = (getattr(exc, "message", None) or str(exc) or "the server refused").strip()
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


ASK_AUTHENTICATOR = "This account also signs in with an authenticator app: enter its code, then set the password again."


_LIVE: weakref.WeakSet[Account] = weakref.WeakSet()  # every Account of this process, for `abandon_all_resets`


async def abandon_all_resets() -> None:
    """The app quits: sign out every recovery session a password reset still keeps (see `Account.abandon_reset`)."""
    for account in list(_LIVE):
        await account.abandon_reset()


class Account:
    def __init__(self, url: str, anon_key: str) -> None:
        self.url = url.rstrip("/")
        self.anon_key = anon_key
        self._recovering: dict[str, Session] = {}  # a password reset waiting for the authenticator's code
        self._abandoned = 0  # how many times the resets were abandoned (`abandon_reset`)
        _LIVE.add(self)

    @asynccontextmanager
    async def _auth(self) -> AsyncIterator[AsyncGoTrueClient]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            client = AsyncGoTrueClient(
                url=f"{self.url}/auth/v1",
                headers={"apikey": self.anon_key},
                auto_refresh_token=False,
                persist_session=False,
                http_client=http,
            )
            try:
                yield client
            except GoTrueError as exc:
                raise AccountError(_sentence(exc)) from exc
            except httpx.HTTPError as exc:
                raise AccountError(f"The server cannot be reached ({exc.__class__.__name__}).") from exc

    @asynccontextmanager
    async def _rest(self, access_token: str) -> AsyncIterator[AsyncPostgrestClient]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            client = AsyncPostgrestClient(
                f"{self.url}/rest/v1",
                http_client=http,
                headers={"apikey": self.anon_key, "Authorization": f"Bearer {access_token}"},
            )
            try:
                yield client
            except APIError as exc:
                raise AccountError(_sentence(exc)) from exc
            except httpx.HTTPError as exc:
                raise AccountError(f"The server cannot be reached ({exc.__class__.__name__}).") from exc

    async def send_reset_code(self, email: str) -> None:
        """Email a password-reset code (answered the same whether or not the address has an account)."""
        async with self._auth() as auth:
            await auth.reset_password_for_email(email.strip())

    async def send_sign_in_code(self, email: str) -> None:
        """Email a sign-in code to an existing account (an invitee's, created when they were invited)."""
        async with self._auth() as auth:
            await auth.sign_in_with_otp({"email": email.strip(), "options": {"should_create_user": False}})

    async def reset_password(self, email: str, code: str, new_password: str, authenticator_code: str = "") -> None:
        """Set a new password with the emailed recovery code. An account with a verified authenticator (MFA) also
        needs its current code: the server lets only a second-step (aal2) session change the password, so a stolen
        mailbox alone cannot take the account over. Asked without it, the recovery session is kept (the emailed
        code is used up by then) and the next call with the authenticator's code goes on from it; every other
        ending (done, a refused password, an error) signs the recovery session out, and so does `abandon_reset`
        (the dialog closed, the app quitting), also when it runs while this call is under way."""
        address = email.strip().lower()
        second = authenticator_code.strip()
        generation = self._abandoned
        async with self._auth() as auth:
            kept = self._recovering.pop(address, None)
            if kept is not None and not second:
                self._recovering[address] = kept  # the emailed code is used up: still the authenticator's code
                raise AccountError(ASK_AUTHENTICATOR)
            if kept is not None:
                await auth.set_session(kept.access_token, kept.refresh_token)
            else:
                await auth.verify_otp({"email": email.strip(), "token": code.strip(), "type": "recovery"})
            keep = False
            try:
                factors = [f for f in (await auth.mfa.list_factors()).totp if f.status == "verified"]
                if factors:
                    if not second:
                        keep = True
                        raise AccountError(ASK_AUTHENTICATOR)
                    try:
                        await auth.mfa.challenge_and_verify({"factor_id": factors[0].id, "code": second})
                    except GoTrueError as exc:
                        keep = True  # a mistyped code: try again without a new email
                        raise AccountError(f"The authenticator code was refused: {_sentence(exc)}") from exc
                await auth.update_user({"password": new_password})
            finally:
                await self._end_recovery(auth, address, keep and self._abandoned == generation)

    async def _end_recovery(self, auth: AsyncGoTrueClient, address: str, keep: bool) -> None:
        """Keep the client's recovery session for the authenticator's code, or sign it out (scope local: only it)."""
        session = await auth.get_session() if keep else None  # as the client holds it now (set_session may refresh)
        if session is not None:
            self._recovering[address] = session
            return
        try:
            await auth.sign_out({"scope": "local"})
        except (GoTrueError, httpx.HTTPError) as exc:
            log.warning("a password reset's session could not be signed out: %s", exc)

    async def abandon_reset(self) -> None:
        """Sign out the recovery sessions kept for an authenticator's code: the reset was abandoned (its dialog
        closed, its page gone, the app quitting). On the server and for that session only (scope local): the
        account's other sessions, this device's signed-in one included, stay. A session the server already ended
        counts as signed out; one that cannot be reached now is logged (it ends with its refresh token's use)."""
        self._abandoned += 1  # a reset under way signs its session out instead of keeping it
        kept, self._recovering = list(self._recovering.values()), {}
        for session in kept:
            try:
                await self._sign_out(session)
            except AccountError as exc:
                log.warning("an abandoned password reset's session could not be signed out: %s", exc)

    async def _sign_out(self, session: Session) -> None:
        async with self._auth() as auth:
            try:
                await auth.admin.sign_out(session.access_token, "local")
            except GoTrueError:  # the access token expired meanwhile: its refresh token still names the session
                try:
                    refreshed = (await auth.refresh_session(session.refresh_token)).session
                except GoTrueError:
                    return  # refused: the session is gone already
                if refreshed is not None:
                    await auth.admin.sign_out(refreshed.access_token, "local")

    async def accept_invitation(self, email: str, code: str, new_password: str) -> str:
        """Sign in with the emailed code, take the invitation's role, set a password; returns the role."""
        async with self._auth() as auth:
            verified = await auth.verify_otp({"email": email.strip(), "token": code.strip(), "type": "email"})
            if verified.session is None:
                raise AccountError("The server returned no session.")
            try:
                async with self._rest(verified.session.access_token) as rest:
                    role = (await rest.rpc("accept_invitation", {}).execute()).data
                # the acceptance ended the account's other sessions; a password sign-in in flight meanwhile (it
                # checked the password the acceptance cleared) may have made one since: end those too, before the
                # password (whose change would, but may be refused)
                await auth.sign_out({"scope": "others"})
                await auth.update_user({"password": new_password})
            finally:
                await auth.sign_out({"scope": "local"})  # a failed try leaves no session behind
        return str(role)

    async def invite(self, admin_token: str, email: str, role: Role) -> None:
        """As an admin: record the invitation (RLS: admins only), then have Auth email the address a code (which
        creates its account). If Auth refuses, the invitation goes again: one without an account would be bound to
        whoever signs the address up first (migration 20261211000500), and it would block inviting the address
        again."""
        address = email.strip().lower()
        async with self._rest(admin_token) as rest:
            row = {"email": address, "role": role}
            await rest.from_("invitations").insert(row, returning=ReturnMethod.minimal).execute()
        try:
            async with self._auth() as auth:
                await auth.sign_in_with_otp({"email": address, "options": {"should_create_user": True}})
        except AccountError as exc:
            async with self._rest(admin_token) as rest:
                await rest.from_("invitations").delete().eq("email", address).is_("accepted_at", "null").execute()
            raise AccountError(f"The invitation was not sent: {exc}") from exc

    async def set_role(self, admin_token: str, user_id: str, role: Role) -> None:
        """As an admin: give a teammate another role (``customer`` takes them off the team). The server decides
        (RLS and the profiles guard: only admins change roles); a row it did not change is refused here. The
        teammate's app follows at once (realtime) and rebuilds its cache for the new role."""
        async with self._rest(admin_token) as rest:
            changed = await rest.from_("profiles").update({"role": role}).eq("id", user_id).execute()
        if not changed.data:
            raise AccountError("The server did not change that role: only admins change roles.")
