"""The emailed GoTrue flows: `/otp` (magic link and email OTP), `/recover`, `/resend`,
`/reauthenticate`, admin `/invite` and `/admin/generate_link`, and `/sso` (SAML disabled).

Each one writes the token hash onto `auth.users` and sends the email in one transaction, so a
failed delivery leaves no usable token behind. Unknown emails on `/recover` and `/resend` answer
200 `{}` like GoTrue (no account enumeration). PKCE requests (`code_challenge`, which supabase-py
sends by default) also record an `auth.flow_state`, whose auth code the verify link hands out.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.auth import emails, sessions, users
from localbase.auth.emails import Action
from localbase.auth.errors import AuthError, bad_request, field, read_json, unprocessable
from localbase.auth.ratelimit import RateLimits
from localbase.auth.sessions import AuthSettings
from localbase.context import context
from localbase.mail import Mailer

_CHALLENGE_METHODS = ("s256", "plain")


def pkce_params(body: dict[str, Any]) -> tuple[str, str] | None:
    """GoTrue's validatePKCEParams: both or neither of code_challenge and code_challenge_method."""
    challenge = field(body, "code_challenge", str, "")
    method = field(body, "code_challenge_method", str, "")
    if not challenge and not method:
        return None
    if not challenge or not method:
        raise bad_request("validation_failed", "PKCE flow requires code_challenge_method and code_challenge")
    if method.lower() not in _CHALLENGE_METHODS:
        raise bad_request("validation_failed", f"code challenge method not supported: {method}")
    if not 43 <= len(challenge) <= 128:
        raise bad_request("validation_failed", "code challenge has to be between 43 and 128 characters")
    return challenge, method.lower()


async def create_flow_state(conn: AsyncConnection[Any], user_id: Any, method: Action, pkce: tuple[str, str]) -> None:
    challenge, challenge_method = pkce
    await conn.execute(
        "insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,"
        " provider_type, authentication_method) values (%s, %s, %s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), str(user_id), str(uuid.uuid4()), challenge_method, challenge, method.value, method.value),
    )


class EmailFlows:
    def __init__(self, settings: AuthSettings, mailer: Mailer, limits: RateLimits) -> None:
        self.settings = settings
        self.mailer = mailer
        self.limits = limits

    def _redirect(self, request: Request, body: dict[str, Any] | None = None) -> str:
        wanted = request.query_params.get("redirect_to") or (body or {}).get("redirect_to")
        return emails.referrer(self.settings, wanted if isinstance(wanted, str) else None)

    async def _send(
        self,
        conn: AsyncConnection[Any],
        request: Request,
        user: dict[str, Any],
        action: Action,
        *,
        redirect_to: str,
        pkce: tuple[str, str] | None = None,
    ) -> str:
        """Store a fresh token for `action` on the user and email it (caller's transaction); returns the OTP."""
        column, sent_column = {
            Action.MAGICLINK: ("recovery_token", "recovery_sent_at"),
            Action.RECOVERY: ("recovery_token", "recovery_sent_at"),
            Action.SIGNUP: ("confirmation_token", "confirmation_sent_at"),
            Action.INVITE: ("confirmation_token", "confirmation_sent_at"),
            Action.REAUTHENTICATION: ("reauthentication_token", "reauthentication_sent_at"),
        }[action]
        if action is not Action.INVITE:
            emails.check_frequency(user[sent_column], self.settings)
        otp = emails.new_otp(self.settings.otp_length)
        stored = emails.stored_token(user["email"], otp, pkce is not None)
        extra = ", invited_at = now()" if action is Action.INVITE else ""
        await conn.execute(
            f"update auth.users set {column} = %s, {sent_column} = now(){extra} where id = %s",
            (stored, str(user["id"])),
        )
        if pkce is not None:
            await create_flow_state(conn, user["id"], action, pkce)
        link = None
        if action is not Action.REAUTHENTICATION:
            link = emails.action_link(context(request).api_url, stored, action, redirect_to)
        await emails.deliver(self.mailer, self.limits, to=user["email"], action=action, otp=otp, link=link)
        return otp

    async def otp(self, request: Request) -> Response:
        body = await read_json(request)
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        create_user = field(body, "create_user", bool, True)
        data = field(body, "data", dict, {})
        if email and phone:
            raise bad_request("validation_failed", "Only an email address or phone number should be provided")
        if email and field(body, "channel", str, ""):
            raise bad_request("validation_failed", "Channel should only be specified with Phone OTP")
        pkce = pkce_params(body)
        if phone:
            raise bad_request("phone_provider_disabled", "Unsupported phone provider")
        if not email:
            raise bad_request("validation_failed", "One of email or phone must be set")
        email = users.validate_email(email)
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn, conn.transaction():
            user = await users.find_by_email(conn, email)
            if user is None:
                if not create_user:
                    raise unprocessable("otp_disabled", "Signups not allowed for otp")
                # GoTrue signs the address up (autoconfirm) with a random password, then sends the link
                user_id = uuid.uuid4()
                await users.insert_user(
                    conn,
                    user_id=user_id,
                    email=email,
                    password_hash=await users.hash_password(secrets.token_urlsafe(32)),
                    user_metadata=data,
                    app_metadata={"provider": "email", "providers": ["email"]},
                    role=users.AUDIENCE,
                    confirmed=True,
                )
                user = await users.find_by_id(conn, user_id)
                assert user is not None
            await self._send(
                conn, request, user, Action.MAGICLINK, redirect_to=self._redirect(request, body), pkce=pkce
            )
        return JSONResponse({})

    async def recover(self, request: Request) -> Response:
        body = await read_json(request)
        email = field(body, "email", str, "")
        if not email:
            raise bad_request("validation_failed", "Password recovery requires an email")
        email = users.validate_email(email)
        pkce = pkce_params(body)
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn, conn.transaction():
            user = await users.find_by_email(conn, email)
            if user is not None and user["deleted_at"] is None:
                await self._send(
                    conn, request, user, Action.RECOVERY, redirect_to=self._redirect(request, body), pkce=pkce
                )
        return JSONResponse({})

    async def resend(self, request: Request) -> Response:
        body = await read_json(request)
        kind = field(body, "type", str, "")
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        if kind not in ("signup", "email_change", "sms", "phone_change"):
            raise bad_request(
                "validation_failed", "Missing one of these types: signup, email_change, sms, phone_change"
            )
        pkce = pkce_params(body) if kind in ("signup", "email_change") else None
        if not email and kind == "signup":
            raise bad_request("validation_failed", "Type provided requires an email address")
        if not phone and kind == "sms":
            raise bad_request("validation_failed", "Type provided requires a phone number")
        if email and phone:
            raise bad_request("validation_failed", "Only an email address or phone number should be provided.")
        if phone:
            raise bad_request("phone_provider_disabled", "Phone logins are disabled")
        if not email:
            raise bad_request("validation_failed", "Missing email address or phone number")
        email = users.validate_email(email)
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn, conn.transaction():
            user = await users.find_by_email(conn, email)
            # confirmed users have nothing to resend; email changes apply at once (autoconfirm)
            if user is not None and kind == "signup" and user["email_confirmed_at"] is None:
                action = Action.INVITE if user["invited_at"] is not None else Action.SIGNUP
                await self._send(
                    conn,
                    request,
                    user,
                    action,
                    redirect_to=self._redirect(request, body),
                    pkce=pkce if action is Action.SIGNUP else None,
                )
        return JSONResponse({})

    async def reauthenticate(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await sessions.require_user(conn, ctx, request)
            user = caller.user
            assert user is not None
            if not user["email"]:
                raise bad_request(
                    "validation_failed", "Reauthentication requires the user to have an email or a phone number"
                )
            if user["email_confirmed_at"] is None:
                raise unprocessable("email_not_confirmed", "Please verify your email first.")
            async with conn.transaction():
                await self._send(conn, request, user, Action.REAUTHENTICATION, redirect_to="")
        return JSONResponse({})

    async def invite(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            body = await read_json(request)
            email = users.validate_email(field(body, "email", str, ""))
            data = field(body, "data", dict, {})
            async with conn.transaction():
                user = await users.find_by_email(conn, email)
                if user is not None and user["email_confirmed_at"] is not None:
                    raise users.email_exists_error()
                if user is None:
                    user_id = uuid.uuid4()
                    try:
                        await users.insert_user(
                            conn,
                            user_id=user_id,
                            email=email,
                            password_hash="",
                            user_metadata=data,
                            app_metadata={"provider": "email", "providers": ["email"]},
                            role=users.AUDIENCE,
                            confirmed=False,
                        )
                    except Exception as exc:
                        if users.unique_violation(exc):
                            raise users.email_exists_error() from exc
                        raise
                    user = await users.find_by_id(conn, user_id)
                    assert user is not None
                await self._send(conn, request, user, Action.INVITE, redirect_to=self._redirect(request, body))
            return JSONResponse(await users.load_json(conn, user["id"]))

    async def generate_link(self, request: Request) -> Response:
        """Admin: the action link and OTP of an email, without sending it (GoTrue's adminGenerateLink)."""
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            body = await read_json(request)
            kind = field(body, "type", str, "")
            email = users.validate_email(field(body, "email", str, ""))
            data = field(body, "data", dict, {})
            password = field(body, "password", str, "")
            redirect_to = self._redirect(request, body)
            if kind not in ("signup", "invite", "magiclink", "recovery", "email_change_current", "email_change_new"):
                raise bad_request("validation_failed", f"Invalid email action link type requested: {kind}")
            if kind.startswith("email_change"):
                raise bad_request("validation_failed", "Enable secure email change to generate link for current email")
            async with conn.transaction():
                user = await users.find_by_email(conn, email)
                if user is None and kind in ("recovery",):
                    raise AuthError(404, "user_not_found", "User with this email not found")
                if user is None and kind == "magiclink":
                    kind, password = "signup", secrets.token_urlsafe(48)
                if user is not None and kind in ("signup", "invite") and user["email_confirmed_at"] is not None:
                    raise users.email_exists_error()
                if user is None:
                    if kind == "signup":
                        users.check_password_strength(password)
                    user_id = uuid.uuid4()
                    await users.insert_user(
                        conn,
                        user_id=user_id,
                        email=email,
                        password_hash=await users.hash_password(password) if kind == "signup" else "",
                        user_metadata=data,
                        app_metadata={"provider": "email", "providers": ["email"]},
                        role=users.AUDIENCE,
                        confirmed=False,
                    )
                    user = await users.find_by_id(conn, user_id)
                    assert user is not None
                action = Action(kind)
                otp = emails.new_otp(self.settings.otp_length)
                hashed = emails.token_hash(email, otp)
                column, sent = (
                    ("recovery_token", "recovery_sent_at")
                    if action in (Action.MAGICLINK, Action.RECOVERY)
                    else ("confirmation_token", "confirmation_sent_at")
                )
                extra = ", invited_at = now()" if action is Action.INVITE else ""
                await conn.execute(
                    f"update auth.users set {column} = %s, {sent} = now(){extra} where id = %s",
                    (hashed, str(user["id"])),
                )
            payload = await users.load_json(conn, user["id"])
        payload.update(
            {
                "action_link": emails.action_link(ctx.api_url, hashed, action, redirect_to),
                "email_otp": otp,
                "hashed_token": hashed,
                "verification_type": action.value,
                "redirect_to": redirect_to,
            }
        )
        return JSONResponse(payload)

    async def sso(self, request: Request) -> Response:
        await read_json(request, allow_empty=True)
        raise AuthError(404, "saml_provider_disabled", "SAML 2.0 is disabled")
