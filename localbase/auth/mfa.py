"""MFA with TOTP, as GoTrue's `/factors` endpoints: enrol (secret, otpauth URI, QR code as SVG),
challenge, verify (the session becomes `aal2`, with a `totp` entry in `amr`), unenrol.

TOTP is RFC 6238 via `pyotp` (30 s steps, 6 digits, SHA-1, one step of skew: GoTrue's
`totp.ValidateCustom` options); the QR code is drawn by `qrcode`'s SVG factory. Only TOTP is
offered: phone and WebAuthn factors answer GoTrue's "enroll is disabled" errors. A challenge
lives five minutes and must be verified from the IP address that created it. Admins (service role)
list and delete a user's factors (`/admin/users/{id}/factors[/{factor_id}]`), e.g. for an agent who
lost their phone.
"""

from __future__ import annotations

import io
import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pyotp
import qrcode
import qrcode.image.svg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.auth import sessions, users
from localbase.auth.errors import AuthError, bad_request, field, forbidden, read_json, unprocessable
from localbase.auth.sessions import AuthSettings, Caller
from localbase.context import context

CHALLENGE_EXPIRY = timedelta(seconds=300)  # GoTrue's MFA_CHALLENGE_EXPIRY_DURATION default
MAX_ENROLLED_FACTORS = 10


def _client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def _qr_svg(uri: str) -> str:
    image = qrcode.make(
        uri, image_factory=qrcode.image.svg.SvgPathImage, error_correction=qrcode.constants.ERROR_CORRECT_H
    )
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue().decode()


class Factors:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    async def _caller(self, conn: AsyncConnection[Any], request: Request) -> Caller:
        caller = await sessions.require_user(conn, context(request), request)
        if caller.session_id is None:
            raise AuthError(500, "unexpected_failure", "A valid session and a registered user are required")
        return caller

    @staticmethod
    async def _session_aal(conn: AsyncConnection[Any], caller: Caller) -> str:
        aal, _ = await sessions.assurance(conn, caller.session_id)  # type: ignore[arg-type]
        return aal

    async def enroll(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await self._caller(conn, request)
            user = caller.user
            assert user is not None
            body = await read_json(request)
            kind = field(body, "factor_type", str, "")
            name = field(body, "friendly_name", str, "")
            issuer = field(body, "issuer", str, "") or (urlsplit(self.settings.site_url).netloc or "localbase")
            if kind == "phone":
                raise unprocessable("mfa_phone_enroll_not_enabled", "MFA enroll is disabled for Phone")
            if kind == "webauthn":
                raise unprocessable("mfa_webauthn_enroll_not_enabled", "MFA enroll is disabled for WebAuthn")
            if kind != "totp":
                raise bad_request("validation_failed", "factor_type needs to be totp, phone, or webauthn")
            async with conn.transaction():
                await conn.execute("select 1 from auth.users where id = %s for update", (str(user["id"]),))
                cur = await conn.execute(
                    "select count(*), count(*) filter (where status = 'verified'),"
                    " count(*) filter (where friendly_name = %s and %s <> '') from auth.mfa_factors where user_id = %s",
                    (name, name, str(user["id"])),
                )
                counts = await cur.fetchone()
                assert counts is not None
                total, verified, same_name = counts
                if same_name:
                    raise unprocessable(
                        "mfa_factor_name_conflict",
                        f'A factor with the friendly name "{name}" for this user already exists',
                    )
                if total >= MAX_ENROLLED_FACTORS or verified >= MAX_ENROLLED_FACTORS:
                    raise unprocessable(
                        "too_many_enrolled_mfa_factors",
                        "Maximum number of verified factors reached, unenroll to continue",
                    )
                if verified and await self._session_aal(conn, caller) != "aal2":
                    raise forbidden("insufficient_aal", "AAL2 required to enroll a new factor")
                secret = pyotp.random_base32(32)
                uri = pyotp.TOTP(secret).provisioning_uri(name=user["email"] or str(user["id"]), issuer_name=issuer)
                factor_id = uuid.uuid4()
                await conn.execute(
                    "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, secret)"
                    " values (%s, %s, %s, 'totp', 'unverified', %s)",
                    (str(factor_id), str(user["id"]), name, secret),
                )
        return JSONResponse(
            {
                "id": str(factor_id),
                "type": "totp",
                "friendly_name": name,
                "totp": {"qr_code": _qr_svg(uri), "secret": secret, "uri": uri},
            }
        )

    async def _factor(self, conn: AsyncConnection[Any], request: Request, caller: Caller) -> dict[str, Any]:
        factor_id = users.parse_uuid(request.path_params["factor_id"])
        assert caller.user is not None
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select * from auth.mfa_factors where id = %s and user_id = %s for update",
                (str(factor_id) if factor_id else None, str(caller.user["id"])),
            )
            factor = await cur.fetchone()
        if factor is None:
            raise AuthError(404, "mfa_factor_not_found", "Factor not found")
        return factor

    async def challenge(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await self._caller(conn, request)
            await read_json(request, allow_empty=True)
            async with conn.transaction():
                factor = await self._factor(conn, request, caller)
                challenge_id = uuid.uuid4()
                cur = await conn.execute(
                    "insert into auth.mfa_challenges (id, factor_id, ip_address) values (%s, %s, %s)"
                    " returning created_at",
                    (str(challenge_id), str(factor["id"]), _client_ip(request)),
                )
                created = await cur.fetchone()
                assert created is not None
                await conn.execute(
                    "update auth.mfa_factors set last_challenged_at = now() where id = %s", (str(factor["id"]),)
                )
        return JSONResponse(
            {"id": str(challenge_id), "type": "totp", "expires_at": int((created[0] + CHALLENGE_EXPIRY).timestamp())}
        )

    async def verify(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await self._caller(conn, request)
            body = await read_json(request)
            challenge_id = users.parse_uuid(field(body, "challenge_id", str, ""))
            code = field(body, "code", str, "")
            assert caller.user is not None and caller.session_id is not None
            async with conn.transaction():
                factor = await self._factor(conn, request, caller)
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(
                        "select * from auth.mfa_challenges where id = %s and factor_id = %s for update",
                        (str(challenge_id) if challenge_id else None, str(factor["id"])),
                    )
                    challenge = await cur.fetchone()
                if challenge is None:
                    raise unprocessable("mfa_factor_not_found", "MFA factor with the provided challenge ID not found")
                # GoTrue answers a replayed (already verified) challenge as it does one from another address
                if challenge["verified_at"] is not None or (
                    challenge["ip_address"] is not None and str(challenge["ip_address"]) != _client_ip(request)
                ):
                    raise unprocessable("mfa_ip_address_mismatch", "Challenge and verify IP addresses mismatch.")
                if datetime.now(UTC) > challenge["created_at"] + CHALLENGE_EXPIRY:
                    await conn.execute("delete from auth.mfa_challenges where id = %s", (str(challenge["id"]),))
                    raise unprocessable(
                        "mfa_challenge_expired",
                        f"MFA challenge {challenge['id']} has expired, verify against another"
                        " challenge or create a new challenge.",
                    )
            if not pyotp.TOTP(factor["secret"]).verify(code, valid_window=1):
                raise unprocessable("mfa_verification_failed", "Invalid TOTP code entered")
            async with conn.transaction():
                uid, sid = str(caller.user["id"]), str(caller.session_id)
                await conn.execute(
                    "update auth.mfa_challenges set verified_at = now() where id = %s", (str(challenge["id"]),)
                )
                await conn.execute(
                    "update auth.mfa_factors set status = 'verified', updated_at = now() where id = %s",
                    (str(factor["id"]),),
                )
                await conn.execute("update auth.sessions set aal = 'aal2', updated_at = now() where id = %s", (sid,))
                await sessions.add_amr(conn, sid, "totp")
                # as GoTrue: sessions below aal2 end, unverified factors of the kind go
                await conn.execute(
                    "delete from auth.sessions where user_id = %s and id <> %s and aal <> 'aal2'", (uid, sid)
                )
                await conn.execute(
                    "delete from auth.mfa_factors where user_id = %s and status = 'unverified'"
                    " and factor_type = 'totp'",
                    (uid,),
                )
                token = sessions.new_refresh_token()
                await conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now()"
                    " where session_id = %s and revoked = false",
                    (sid,),
                )
                await conn.execute(
                    "insert into auth.refresh_tokens (token, user_id, session_id, revoked) values (%s, %s, %s, false)",
                    (token, uid, sid),
                )
                cur2 = await conn.execute("select created_at from auth.sessions where id = %s", (sid,))
                started = await cur2.fetchone()
                assert started is not None
                payload = await sessions.session_response(
                    conn,
                    ctx,
                    self.settings,
                    user_id=uid,
                    session_id=caller.session_id,
                    signed_in_at=started[0],
                    refresh_token=token,
                )
        return JSONResponse(payload)

    @staticmethod
    async def _drop_factor(conn: AsyncConnection[Any], user_id: str, factor_id: str) -> None:
        """Delete a factor; without a verified factor left, no session of the user can claim aal2."""
        await conn.execute("delete from auth.mfa_factors where id = %s", (factor_id,))
        cur = await conn.execute(
            "select 1 from auth.mfa_factors where user_id = %s and status = 'verified'", (user_id,)
        )
        if await cur.fetchone() is None:
            await conn.execute("update auth.sessions set aal = 'aal1' where user_id = %s", (user_id,))
            await conn.execute(
                "delete from auth.mfa_amr_claims where authentication_method = 'totp'"
                " and session_id in (select id from auth.sessions where user_id = %s)",
                (user_id,),
            )

    async def admin_list(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.admin_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            user_id = self._admin_user_id(request)
            if await users.find_by_id(conn, user_id) is None:
                raise AuthError(404, "user_not_found", "User not found")
            return JSONResponse(await users.factors(conn, user_id))

    async def admin_delete(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.admin_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            user_id = self._admin_user_id(request)
            factor_id = users.parse_uuid(request.path_params["factor_id"])
            async with conn.transaction():
                if await users.find_by_id(conn, user_id, lock=True) is None:
                    raise AuthError(404, "user_not_found", "User not found")
                listed = {f["id"]: f for f in await users.factors(conn, user_id)}
                factor = listed.get(str(factor_id)) if factor_id else None
                if factor is None:
                    raise AuthError(404, "mfa_factor_not_found", "Factor not found")
                await self._drop_factor(conn, user_id, factor["id"])
        return JSONResponse(factor)

    @staticmethod
    def _admin_user_id(request: Request) -> str:
        parsed = users.parse_uuid(request.path_params["user_id"])
        if parsed is None:
            raise AuthError(404, "validation_failed", "user_id must be an UUID")
        return str(parsed)

    async def unenroll(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await self._caller(conn, request)
            assert caller.user is not None
            async with conn.transaction():
                factor = await self._factor(conn, request, caller)
                if factor["status"] == "verified" and await self._session_aal(conn, caller) != "aal2":
                    raise unprocessable("insufficient_aal", "AAL2 required to unenroll verified factor")
                await self._drop_factor(conn, str(caller.user["id"]), str(factor["id"]))
        return JSONResponse({"id": str(factor["id"])})
