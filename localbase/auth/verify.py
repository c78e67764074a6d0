"""`/verify` (GET: the email link, answered with a 303 redirect; POST: a token hash, or an email
and its OTP) and the `pkce` token grant that turns a link's auth code into a session.

As GoTrue: a link (GET) carries the stored token itself (`pkce_<hash>` for PKCE requests) and
redirects to `redirect_to` with the session in the fragment (`#access_token=...&type=invite`), or
with `?code=<auth code>` for PKCE, or with `#error=...&error_code=otp_expired&...` on failure;
a POST answers the session as JSON. A token works once: verifying clears it. Invited users get a
random password on acceptance (they set their own with `PUT /user` in the session they receive).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from localbase.auth import emails, sessions, users
from localbase.auth.emails import Action
from localbase.auth.errors import AuthError, bad_request, field, forbidden, read_json, unprocessable
from localbase.auth.sessions import AuthSettings
from localbase.context import context

FLOW_STATE_EXPIRY = timedelta(minutes=5)  # GoTrue's FlowStateExpiryDuration default
_LINK_TYPES = (Action.SIGNUP, Action.INVITE, Action.MAGICLINK, Action.RECOVERY, Action.EMAIL_CHANGE)
_OAUTH_ERRORS = {
    400: "invalid_request",
    401: "unauthorized_client",
    403: "access_denied",
    404: "invalid_request",
    422: "invalid_request",
    429: "invalid_request",
    500: "server_error",
}


def _expired_link() -> AuthError:
    return forbidden("otp_expired", "Email link is invalid or has expired")


def _expired_token() -> AuthError:
    return forbidden("otp_expired", "Token has expired or is invalid")


class Verifier:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def get(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        kind = request.query_params.get("type", "")
        redirect_to = emails.referrer(self.settings, request.query_params.get("redirect_to"))
        if not kind:
            raise bad_request("validation_failed", "Verify requires a verification type")
        if not token:
            raise bad_request("validation_failed", "Verify requires a token or a token hash")
        pkce = token.startswith(emails.PKCE_PREFIX)
        ctx = context(request)
        try:
            async with ctx.auth_pool.connection() as conn, conn.transaction():
                action = self._action(kind, link=True)
                user = await self._by_stored_token(conn, token, action)
                await self._apply(conn, user, action)
                if pkce:
                    code = await self._issue_auth_code(conn, user["id"], action)
                else:
                    session = await sessions.issue_session(conn, ctx, self.settings, request, user["id"], method="otp")
        except AuthError as exc:
            return RedirectResponse(self._error_url(redirect_to, exc, pkce), status_code=303)
        if pkce:
            return RedirectResponse(_with_query(redirect_to, {"code": code}), status_code=303)
        fragment = urlencode(
            {
                "access_token": session["access_token"],
                "expires_at": session["expires_at"],
                "expires_in": session["expires_in"],
                "refresh_token": session["refresh_token"],
                "token_type": "bearer",
                "type": kind,
                "sb": "",
            }
        )
        return RedirectResponse(f"{redirect_to}#{fragment}", status_code=303)

    async def post(self, request: Request) -> Response:
        body = await read_json(request)
        kind = field(body, "type", str, "")
        token = field(body, "token", str, "")
        token_hash = field(body, "token_hash", str, "")
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        if not kind:
            raise bad_request("validation_failed", "Verify requires a verification type")
        if bool(token) == bool(token_hash):
            raise bad_request("validation_failed", "Verify requires either a token or a token hash")
        if kind in ("sms", "phone_change") or (phone and not email):
            raise bad_request("phone_provider_disabled", "Phone logins are disabled")
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn, conn.transaction():
            if token:
                if not email:
                    raise bad_request(
                        "validation_failed", "Only an email address or phone number should be provided on verify"
                    )
                try:
                    email = users.validate_email(email)
                except AuthError as exc:
                    raise unprocessable("validation_failed", "Invalid email format") from exc
                action = self._action(kind, link=False)
                user, action = await self._by_email_and_otp(conn, email, emails.token_hash(email, token), action)
            else:
                if email or phone or body.get("redirect_to"):
                    raise bad_request("validation_failed", "Only the token_hash and type should be provided")
                action = self._action(kind, link=False)
                user = await self._by_stored_token(conn, token_hash, action)
                if action is Action.EMAIL:
                    action = (
                        Action.MAGICLINK if emails.token_matches(token_hash, user["recovery_token"]) else Action.SIGNUP
                    )
            await self._apply(conn, user, action)
            session = await sessions.issue_session(conn, ctx, self.settings, request, user["id"], method="otp")
        return JSONResponse(session)

    @staticmethod
    def _action(kind: str, *, link: bool) -> Action:
        allowed = _LINK_TYPES if link else (*_LINK_TYPES, Action.EMAIL)
        if kind not in [a.value for a in allowed]:
            raise bad_request("validation_failed", "Unsupported verification type")
        return Action(kind)

    async def _by_stored_token(self, conn: AsyncConnection[Any], token: str, action: Action) -> dict[str, Any]:
        columns = {
            Action.SIGNUP: ("confirmation_token",),
            Action.INVITE: ("confirmation_token",),
            Action.MAGICLINK: ("recovery_token",),
            Action.RECOVERY: ("recovery_token",),
            Action.EMAIL: ("confirmation_token", "recovery_token"),
            Action.EMAIL_CHANGE: (),
        }[action]
        if not columns:
            raise _expired_link()
        where = " or ".join(f"{c} = %s" for c in columns)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"select {users.USER_COLUMNS} from auth.users where {where} for update", tuple(token for _ in columns)
            )
            user = await cur.fetchone()
        if user is None:
            raise _expired_link()
        if users.is_banned(user):
            raise forbidden("user_banned", "User is banned")
        sent = user["recovery_sent_at"] if user["recovery_token"] == token else user["confirmation_sent_at"]
        if emails.is_expired(sent, self.settings):
            raise _expired_link()
        return user

    async def _by_email_and_otp(
        self, conn: AsyncConnection[Any], email: str, hashed: str, action: Action
    ) -> tuple[dict[str, Any], Action]:
        user = await users.find_by_email(conn, email)
        if user is None:
            raise _expired_token()
        user = await users.find_by_id(conn, user["id"], lock=True)
        assert user is not None
        if users.is_banned(user):
            raise forbidden("user_banned", "User is banned")
        confirm_ok = emails.token_matches(hashed, user["confirmation_token"]) and not emails.is_expired(
            user["confirmation_sent_at"], self.settings
        )
        recover_ok = emails.token_matches(hashed, user["recovery_token"]) and not emails.is_expired(
            user["recovery_sent_at"], self.settings
        )
        if action is Action.EMAIL:
            if confirm_ok:
                return user, Action.SIGNUP
            if recover_ok:
                return user, Action.MAGICLINK
        elif (action in (Action.SIGNUP, Action.INVITE) and confirm_ok) or (
            action in (Action.MAGICLINK, Action.RECOVERY) and recover_ok
        ):
            return user, action
        raise _expired_token()

    @staticmethod
    async def _apply(conn: AsyncConnection[Any], user: dict[str, Any], action: Action) -> None:
        """What the verified token does: confirm the address, accept an invite, spend the token."""
        uid = str(user["id"])
        if action in (Action.SIGNUP, Action.INVITE):
            if not user["encrypted_password"] and user["invited_at"] is not None:
                random_hash = await users.hash_password(secrets.token_urlsafe(48))
                await conn.execute("update auth.users set encrypted_password = %s where id = %s", (random_hash, uid))
            await conn.execute(
                "update auth.users set confirmation_token = '', email_confirmed_at ="
                " coalesce(email_confirmed_at, now()), updated_at = now() where id = %s",
                (uid,),
            )
        else:
            await conn.execute(
                "update auth.users set recovery_token = '', email_confirmed_at ="
                " coalesce(email_confirmed_at, now()), updated_at = now() where id = %s",
                (uid,),
            )
        await conn.execute(
            "update auth.identities set identity_data = identity_data || %s, updated_at = now()"
            " where user_id = %s and provider = 'email'",
            (Jsonb({"email_verified": True}), uid),
        )

    @staticmethod
    async def _issue_auth_code(conn: AsyncConnection[Any], user_id: Any, action: Action) -> str:
        method = Action.SIGNUP.value if action is Action.INVITE else action.value
        cur = await conn.execute(
            "update auth.flow_state set auth_code_issued_at = now(), updated_at = now() where id = ("
            " select id from auth.flow_state where user_id = %s and authentication_method = %s"
            " order by created_at desc limit 1) returning auth_code",
            (str(user_id), method),
        )
        row = await cur.fetchone()
        if row is None:
            raise bad_request("flow_state_not_found", "No associated flow state found.")
        return str(row[0])

    @staticmethod
    def _error_url(redirect_to: str, exc: AuthError, pkce: bool) -> str:
        params = {
            "error": _OAUTH_ERRORS.get(exc.status, "server_error"),
            "error_code": exc.code,
            "error_description": exc.message,
        }
        base = _with_query(redirect_to, params) if pkce else redirect_to
        return f"{base}#{urlencode({**params, 'sb': ''})}"

    async def pkce_grant(self, request: Request) -> Response:
        body = await read_json(request)
        code = field(body, "auth_code", str, "")
        verifier = field(body, "code_verifier", str, "")
        if not code or not verifier:
            raise bad_request(
                "validation_failed", "invalid request: both auth code and code verifier should be non-empty"
            )
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("select * from auth.flow_state where auth_code = %s for update", (code,))
                flow = await cur.fetchone()
            if flow is None or flow["user_id"] is None:
                raise AuthError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
            if datetime.now(UTC) > flow["created_at"] + FLOW_STATE_EXPIRY:
                raise unprocessable("flow_state_expired", "invalid flow state, flow state has expired")
            if not _pkce_matches(verifier, flow["code_challenge"], flow["code_challenge_method"]):
                raise bad_request("bad_code_verifier", "code challenge does not match previously saved code verifier")
            await conn.execute("delete from auth.flow_state where id = %s", (flow["id"],))
            session = await sessions.issue_session(
                conn, ctx, self.settings, request, flow["user_id"], method=flow["authentication_method"]
            )
        return JSONResponse(session)


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "s256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return secrets.compare_digest(computed, challenge)
    return secrets.compare_digest(verifier, challenge)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
