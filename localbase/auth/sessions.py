"""Sessions, refresh tokens and access tokens, as GoTrue keeps them in `auth.sessions` and
`auth.refresh_tokens`.

A sign-in creates a session and its first refresh token. A refresh revokes the presented token
and issues a child (`parent` = the old token) in the same session, so `session_id` never changes.
Presenting a revoked token is reuse. As in GoTrue, the parent of the session's active token gets
that active token back (the client lost the answer to its refresh, or a second holder of the
session — another tab, the sync engine — refreshes after the first did); so does any token revoked
less than the reuse interval ago (concurrent refreshes). Anything else is an old token replayed:
the whole family is revoked and the answer is `refresh_token_already_used` (GoTrue's reuse
detection). Where GoTrue would branch a new child inside the interval, localbase hands out the
active one: the session keeps a single live token. All changes to one session's
tokens happen under a row lock on the session, taken first, so concurrent refreshes serialise
without deadlocks.

Refresh tokens are random bearer secrets (`secrets.token_urlsafe`) stored as given, as GoTrue's
legacy tokens are.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from starlette.requests import Request

from localbase.auth import users
from localbase.auth.errors import AuthError, OAuthError, bad_request, forbidden
from localbase.context import StackContext, TokenError

DEFAULT_JWT_EXPIRY = 3600
DEFAULT_REUSE_INTERVAL = 10
ADMIN_ROLES = ("service_role", "supabase_admin")
DEFAULT_SITE_URL = "http://127.0.0.1:3000"  # the Supabase CLI's default site_url
DEFAULT_OTP_EXPIRY = 3600
DEFAULT_OTP_LENGTH = 6
DEFAULT_MAX_FREQUENCY = 60


def _env_seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass(frozen=True)
class AuthSettings:
    jwt_expiry: int  # seconds an access token lives (GoTrue's JWT_EXP)
    reuse_interval: int  # seconds a rotated refresh token may still be replayed
    site_url: str = DEFAULT_SITE_URL  # GoTrue's SITE_URL: where email links land by default
    uri_allow_list: tuple[str, ...] = ()  # further redirect targets (glob patterns)
    otp_expiry: int = DEFAULT_OTP_EXPIRY  # seconds an email link/OTP stays valid (MAILER_OTP_EXP)
    otp_length: int = DEFAULT_OTP_LENGTH  # digits of an email OTP
    max_frequency: int = DEFAULT_MAX_FREQUENCY  # seconds between two emails of a kind to one user

    @classmethod
    def from_env(cls) -> AuthSettings:
        allow = os.environ.get("LOCALBASE_URI_ALLOW_LIST", "")
        return cls(
            jwt_expiry=max(1, _env_seconds("LOCALBASE_JWT_EXPIRY", DEFAULT_JWT_EXPIRY)),
            reuse_interval=_env_seconds("LOCALBASE_REFRESH_REUSE_INTERVAL", DEFAULT_REUSE_INTERVAL),
            site_url=os.environ.get("LOCALBASE_SITE_URL", "") or DEFAULT_SITE_URL,
            uri_allow_list=tuple(p.strip() for p in allow.split(",") if p.strip()),
            otp_expiry=max(1, _env_seconds("LOCALBASE_OTP_EXPIRY", DEFAULT_OTP_EXPIRY)),
            otp_length=min(10, max(6, _env_seconds("LOCALBASE_OTP_LENGTH", DEFAULT_OTP_LENGTH))),
            max_frequency=_env_seconds("LOCALBASE_SMTP_MAX_FREQUENCY", DEFAULT_MAX_FREQUENCY),
        )


@dataclass
class Caller:
    """Who an authenticated request comes from (GoTrue's requireAuthentication result)."""

    claims: dict[str, Any]
    user: dict[str, Any] | None
    session_id: uuid.UUID | None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def access_token(
    ctx: StackContext,
    settings: AuthSettings,
    user: dict[str, Any],
    session_id: uuid.UUID,
    signed_in_at: datetime,
    *,
    aal: str = "aal1",
    amr: list[dict[str, Any]] | None = None,
) -> tuple[str, int]:
    """A GoTrue access token for `user` in `session_id`, and its `exp`."""
    now = int(time.time())
    exp = now + settings.jwt_expiry
    claims = {
        "iss": f"{ctx.api_url}/auth/v1",
        "sub": str(user["id"]),
        "aud": user["aud"] or users.AUDIENCE,
        "exp": exp,
        "iat": now,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": user["raw_app_meta_data"] or {},
        "user_metadata": user["raw_user_meta_data"] or {},
        "role": user["role"] or "",
        "aal": aal,
        "amr": amr or [{"method": "password", "timestamp": int(signed_in_at.timestamp())}],
        "session_id": str(session_id),
        "is_anonymous": bool(user["is_anonymous"]),
    }
    return ctx.keys.sign(claims), exp


async def session_response(
    conn: AsyncConnection[Any],
    ctx: StackContext,
    settings: AuthSettings,
    *,
    user_id: uuid.UUID | str,
    session_id: uuid.UUID,
    signed_in_at: datetime,
    refresh_token: str,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """GoTrue's AccessTokenResponse for a session; `user` is re-read unless the caller holds it current."""
    if user is None:
        user = await users.find_by_id(conn, user_id)
    if user is None:
        raise bad_request("user_not_found", "User not found")
    aal, amr = await assurance(conn, session_id)
    token, exp = access_token(ctx, settings, user, session_id, signed_in_at, aal=aal, amr=amr)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": settings.jwt_expiry,
        "expires_at": exp,
        "refresh_token": refresh_token,
        "user": users.user_json(user, await users.identities(conn, user_id), await users.factors(conn, user_id)),
    }


async def assurance(conn: AsyncConnection[Any], session_id: uuid.UUID) -> tuple[str, list[dict[str, Any]]]:
    """The session's AAL and its authentication methods (newest first), as GoTrue puts them in the JWT."""
    cur = await conn.execute("select aal from auth.sessions where id = %s", (str(session_id),))
    row = await cur.fetchone()
    cur = await conn.execute(
        "select authentication_method, created_at from auth.mfa_amr_claims where session_id = %s"
        " order by created_at desc",
        (str(session_id),),
    )
    amr = [{"method": method, "timestamp": int(at.timestamp())} for method, at in await cur.fetchall()]
    return (row[0] if row and row[0] else "aal1"), amr


async def below_mfa(conn: AsyncConnection[Any], caller: Caller) -> bool:
    """Whether the caller has a verified MFA factor but this session is not `aal2` (GoTrue's
    `user.HasMFAEnabled() && !session.IsAAL2()`): such a session may not change the email, phone or password."""
    assert caller.user is not None
    cur = await conn.execute(
        "select exists (select 1 from auth.mfa_factors where user_id = %s and status = 'verified')",
        (str(caller.user["id"]),),
    )
    row = await cur.fetchone()
    if not row or not row[0]:
        return False
    if caller.session_id is None:
        return True
    aal, _ = await assurance(conn, caller.session_id)
    return aal != "aal2"


async def add_amr(conn: AsyncConnection[Any], session_id: uuid.UUID | str, method: str) -> None:
    await conn.execute(
        "insert into auth.mfa_amr_claims (session_id, authentication_method) values (%s, %s)"
        " on conflict (session_id, authentication_method) do update set updated_at = now(), created_at = now()",
        (str(session_id), method),
    )


async def issue_session(
    conn: AsyncConnection[Any],
    ctx: StackContext,
    settings: AuthSettings,
    request: Request,
    user_id: uuid.UUID | str,
    *,
    method: str = "password",
) -> dict[str, Any]:
    """Sign `user_id` in: new session, first refresh token, last_sign_in_at (caller's transaction).

    `method` is the amr entry GoTrue records for how the user proved who they are (password, otp, ...).
    """
    session_id = uuid.uuid4()
    client = request.client.host if request.client else None
    ip = client if client and _is_ip(client) else None
    cur = await conn.execute(
        "insert into auth.sessions (id, user_id, aal, user_agent, ip, created_at, updated_at)"
        " values (%s, %s, 'aal1', %s, %s, now(), now()) returning created_at",
        (str(session_id), str(user_id), request.headers.get("user-agent", "")[:1000], ip),
    )
    created = await cur.fetchone()
    assert created is not None
    await add_amr(conn, session_id, method)
    token = new_refresh_token()
    await conn.execute(
        "insert into auth.refresh_tokens (token, user_id, session_id, revoked) values (%s, %s, %s, false)",
        (token, str(user_id), str(session_id)),
    )
    await conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (str(user_id),))
    await conn.execute(
        "update auth.identities set last_sign_in_at = now() where user_id = %s and provider = 'email'",
        (str(user_id),),
    )
    return await session_response(
        conn, ctx, settings, user_id=user_id, session_id=session_id, signed_in_at=created[0], refresh_token=token
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_NOT_FOUND = ("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")


async def refresh(
    conn: AsyncConnection[Any], ctx: StackContext, settings: AuthSettings, presented: str
) -> dict[str, Any]:
    """The refresh_token grant with rotation and reuse detection (runs its own transaction).

    Reuse detection must commit the family revocation and still answer with an error, so the
    decision is returned out of the transaction and raised after it commits.
    """
    if not presented:
        raise OAuthError("invalid_request", "refresh_token required")
    failure: AuthError | None = None
    result: dict[str, Any] | None = None
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as dcur:
            # lock order: session, then its tokens (every writer of a session's tokens does this);
            # a token whose session was deleted went with it (on delete cascade), so no row = not found
            await dcur.execute(
                "select id, user_id, created_at from auth.sessions"
                " where id = (select session_id from auth.refresh_tokens where token = %s) for update",
                (presented,),
            )
            session = await dcur.fetchone()
            if session is None:
                raise bad_request(*_NOT_FOUND)
            await dcur.execute(
                "select id, token, revoked, parent, updated_at from auth.refresh_tokens where token = %s for update",
                (presented,),
            )
            token = await dcur.fetchone()
            if token is None:
                raise bad_request(*_NOT_FOUND)
            user = await users.find_by_id(conn, session["user_id"])
            if user is None:
                raise bad_request(*_NOT_FOUND)
            if users.is_banned(user):
                raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
            issued: str | None = None
            if token["revoked"]:
                await dcur.execute(
                    "select token, parent from auth.refresh_tokens where session_id = %s and revoked = false"
                    " order by id desc limit 1",
                    (session["id"],),
                )
                active = await dcur.fetchone()
                fresh = datetime.now(UTC) < token["updated_at"] + timedelta(seconds=settings.reuse_interval)
                if active is not None and (active["parent"] == presented or fresh):
                    issued = active["token"]
                else:
                    await conn.execute(
                        "update auth.refresh_tokens set revoked = true, updated_at = now()"
                        " where session_id = %s and revoked = false",
                        (session["id"],),
                    )
                    failure = bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
            if failure is None:
                if issued is None:
                    issued = new_refresh_token()
                    await conn.execute(
                        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s",
                        (token["id"],),
                    )
                    await conn.execute(
                        "insert into auth.refresh_tokens (token, user_id, parent, session_id, revoked)"
                        " values (%s, %s, %s, %s, false)",
                        (issued, str(user["id"]), presented, session["id"]),
                    )
                await conn.execute(
                    "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now()"
                    " where id = %s",
                    (session["id"],),
                )
                result = await session_response(
                    conn,
                    ctx,
                    settings,
                    user_id=user["id"],
                    session_id=session["id"],
                    signed_in_at=session["created_at"],
                    refresh_token=issued,
                    user=user,
                )
    if failure is not None:
        raise failure
    assert result is not None
    return result


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    return token.strip()


def parse_claims(ctx: StackContext, token: str) -> dict[str, Any]:
    try:
        return ctx.keys.verify(token)
    except TokenError as exc:
        reason = "token has invalid claims: token is expired" if exc.expired else str(exc)
        raise forbidden("bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}") from exc


async def load_caller(conn: AsyncConnection[Any], claims: dict[str, Any]) -> Caller:
    """GoTrue's maybeLoadUserOrSession: the token's user must exist and its session be alive."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise forbidden("bad_jwt", "invalid claim: missing sub claim")
    user_id = users.parse_uuid(sub)
    if user_id is None:
        raise bad_request("bad_jwt", "invalid claim: sub claim must be a UUID")
    user = await users.find_by_id(conn, user_id)
    if user is None:
        raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
    session_id: uuid.UUID | None = None
    raw_sid = claims.get("session_id")
    if raw_sid and raw_sid != str(uuid.UUID(int=0)):
        session_id = users.parse_uuid(raw_sid) if isinstance(raw_sid, str) else None
        if session_id is None:
            raise forbidden("bad_jwt", "invalid claim: session_id claim must be a UUID")
        cur = await conn.execute(
            "select 1 from auth.sessions where id = %s and user_id = %s", (str(session_id), str(user_id))
        )
        if await cur.fetchone() is None:
            raise forbidden("session_not_found", "Session from session_id claim in JWT does not exist")
    return Caller(claims, user, session_id)


async def require_user(
    conn: AsyncConnection[Any], ctx: StackContext, request: Request, claims: dict[str, Any] | None = None
) -> Caller:
    """GoTrue's requireAuthentication: a valid user token whose session still exists, not banned.

    `claims` may be verified beforehand (no database needed), so a request body is only read from
    callers with a genuine token and no pooled connection waits on a slow upload.
    """
    caller = await load_caller(conn, claims if claims is not None else parse_claims(ctx, bearer(request)))
    assert caller.user is not None
    if users.is_banned(caller.user):
        raise forbidden("user_banned", "User is banned")
    return caller


async def require_admin(conn: AsyncConnection[Any], ctx: StackContext, request: Request) -> Caller:
    """GoTrue's requireAdminCredentials: role service_role|supabase_admin; user sessions must be alive."""
    claims = parse_claims(ctx, bearer(request))
    caller = Caller(claims, None, None)
    sid = claims.get("session_id")
    if sid and sid != str(uuid.UUID(int=0)):
        caller = await load_caller(conn, claims)
    if claims.get("role") not in ADMIN_ROLES:
        raise forbidden("not_admin", "User not allowed")
    return caller


async def logout(conn: AsyncConnection[Any], caller: Caller, scope: str) -> None:
    """Delete sessions (their refresh tokens go with them: `on delete cascade`)."""
    assert caller.user is not None
    user_id = str(caller.user["id"])
    if caller.session_id is not None and scope == "local":
        await conn.execute("delete from auth.sessions where id = %s", (str(caller.session_id),))
    elif caller.session_id is not None and scope == "others":
        await conn.execute(
            "delete from auth.sessions where user_id = %s and id <> %s", (user_id, str(caller.session_id))
        )
    else:  # global, or a token without a session (GoTrue then logs out everywhere)
        await conn.execute("delete from auth.sessions where user_id = %s", (user_id,))
