"""Routes of /auth/v1: the subset of Supabase Auth (GoTrue) the Supabase clients use.

Public: `POST /signup` (autoconfirm: answers a Session), `POST /token?grant_type=password|refresh_token|pkce`,
`GET|PUT /user`, `POST /logout?scope=global|local|others`, `GET /settings`, `GET /health`,
`GET /.well-known/jwks.json` (empty: the keys are symmetric); the emailed flows `/otp`, `/verify`,
`/recover`, `/resend`, `/reauthenticate` (`localbase.auth.flows`, `localbase.auth.verify`), MFA
`/factors` (`localbase.auth.mfa`), and `/sso` (SAML disabled).
Admin (JWT role service_role|supabase_admin): `/admin/users[/{id}]` (`localbase.auth.admin`), `/invite`,
`/admin/generate_link`, `/admin/users/{id}/factors[/{factor_id}]`.
Rate limits per client IP as GoTrue's (`localbase.auth.ratelimit`) run before any other work.

Environment: `LOCALBASE_JWT_EXPIRY` (access-token lifetime in seconds, default 3600) and
`LOCALBASE_REFRESH_REUSE_INTERVAL` (seconds a rotated refresh token may be replayed, default 10).

Every request except `/health` must carry a project API key (`apikey` header or query parameter,
the anon or service_role key), as Supabase's gateway demands before a request reaches GoTrue.
Handlers never leak an exception: `AuthError`s become GoTrue's error bodies, anything unexpected
is logged and answered as GoTrue's `unexpected_failure`.

Deliberate differences from GoTrue (configured as the Supabase CLI's defaults: email confirmations off):
- sign-ups are autoconfirmed; an email already registered (confirmed or not) is always
  `user_already_exists` (GoTrue with autoconfirm would confirm an unconfirmed account and sign the
  new caller into it);
- `PUT /user` with a new email changes it at once (GoTrue's autoconfirm behaviour); a `nonce` sent
  with a new password is checked against the `/reauthenticate` code;
- the global email limit applies with autoconfirm too (GoTrue skips it there: a known TODO);
- the password grant checks the password before revealing that a user is banned.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from localbase.auth import admin, emails, sessions, users
from localbase.auth.errors import AuthError, OAuthError, bad_request, error_response, field, forbidden, read_json
from localbase.auth.flows import EmailFlows
from localbase.auth.mfa import Factors
from localbase.auth.ratelimit import Bucket, RateLimits
from localbase.auth.sessions import AuthSettings
from localbase.auth.verify import Verifier
from localbase.context import context
from localbase.mail import Mailer

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
GOTRUE_VERSION = "v2.180.0-localbase"


def _check_api_key(request: Request) -> Response | None:
    """Supabase's gateway (Kong key-auth): no valid project key, no entry."""
    key = request.headers.get("apikey") or request.query_params.get("apikey")
    if not key:
        return JSONResponse(
            {"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."},
            status_code=401,
        )
    keys = context(request).keys
    if not any(hmac.compare_digest(key.encode(), known.encode()) for known in (keys.anon_key, keys.service_role_key)):
        return JSONResponse(
            {"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."},
            status_code=401,
        )
    return None


def guarded(handler: Handler, *, needs_key: bool = True) -> Handler:
    async def endpoint(request: Request) -> Response:
        if needs_key and (refused := _check_api_key(request)) is not None:
            return refused
        try:
            return await handler(request)
        except (AuthError, OAuthError) as exc:
            return error_response(request, exc)
        except Exception:
            log.exception("auth: unexpected failure on %s %s", request.method, request.url.path)
            return error_response(
                request,
                AuthError(
                    500, "unexpected_failure", "Unexpected failure, please check server logs for more information"
                ),
            )

    return endpoint


class AuthAPI:
    """The public endpoints; `settings` (token lifetime, reuse interval) come from the environment."""

    def __init__(self, settings: AuthSettings, limits: RateLimits, verifier: Verifier) -> None:
        self.settings = settings
        self.limits = limits
        self.verifier = verifier

    async def signup(self, request: Request) -> Response:
        self.limits.check(Bucket.SIGN_IN, request)
        body = await read_json(request)
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        password = field(body, "password", str, "")
        data = field(body, "data", dict, {})
        if not email and not phone:
            raise AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
        if not password:
            raise bad_request("validation_failed", "Signup requires a valid password")
        users.check_password_strength(password)
        if email and phone:
            raise bad_request(
                "validation_failed", "Only an email address or phone number should be provided on signup."
            )
        if phone:
            raise bad_request("phone_provider_disabled", "Phone signups are disabled")
        email = users.validate_email(email)
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            if await users.find_by_email(conn, email) is not None:
                raise AuthError(422, "user_already_exists", "User already registered")
            password_hash = await users.hash_password(password)
            user_id = uuid.uuid4()
            try:
                async with conn.transaction():
                    await users.insert_user(
                        conn,
                        user_id=user_id,
                        email=email,
                        password_hash=password_hash,
                        user_metadata=data,
                        app_metadata={"provider": "email", "providers": ["email"]},
                        role=users.AUDIENCE,
                        confirmed=True,
                    )
                    payload = await sessions.issue_session(conn, ctx, self.settings, request, user_id)
            except Exception as exc:
                if users.unique_violation(exc):  # a concurrent sign-up with the same email won
                    raise AuthError(422, "user_already_exists", "User already registered") from exc
                raise
        return JSONResponse(payload)

    async def token(self, request: Request) -> Response:
        grant = request.query_params.get("grant_type", "")
        if grant == "password":
            self.limits.check(Bucket.SIGN_IN, request)
            return await self._password_grant(request)
        if grant == "pkce":
            self.limits.check(Bucket.SIGN_IN, request)
            return await self.verifier.pkce_grant(request)
        if grant == "refresh_token":
            self.limits.check(Bucket.REFRESH, request)
            body = await read_json(request)
            presented = field(body, "refresh_token", str, "")
            ctx = context(request)
            async with ctx.auth_pool.connection() as conn:
                payload = await sessions.refresh(conn, ctx, self.settings, presented)
            return JSONResponse(payload)
        raise bad_request("invalid_credentials", "unsupported_grant_type")

    async def _password_grant(self, request: Request) -> Response:
        body = await read_json(request)
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        password = field(body, "password", str, "")
        if email and phone:
            raise bad_request("validation_failed", "Only an email address or phone number should be provided on login.")
        if phone:
            raise AuthError(422, "phone_provider_disabled", "Phone logins are disabled")
        if not email:
            raise bad_request("validation_failed", "missing email or phone")
        invalid = bad_request("invalid_credentials", "Invalid login credentials")
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            user = await users.find_by_email(conn, email)
            stored = None if user is None or user["deleted_at"] is not None else user["encrypted_password"]
            if not await users.password_matches(password, stored) or user is None:
                raise invalid
            if users.is_banned(user):
                raise bad_request("user_banned", "User is banned")
            if user["email_confirmed_at"] is None:
                raise bad_request("email_not_confirmed", "Email not confirmed")
            async with conn.transaction():
                payload = await sessions.issue_session(conn, ctx, self.settings, request, user["id"])
        return JSONResponse(payload)

    async def get_user(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await sessions.require_user(conn, ctx, request)
            if caller.claims.get("aud") != users.AUDIENCE:
                raise bad_request("validation_failed", "Token audience doesn't match request audience")
            assert caller.user is not None
            return JSONResponse(
                users.user_json(
                    caller.user,
                    await users.identities(conn, caller.user["id"]),
                    await users.factors(conn, caller.user["id"]),
                )
            )

    async def update_user(self, request: Request) -> Response:
        ctx = context(request)
        claims = sessions.parse_claims(ctx, sessions.bearer(request))
        body = await read_json(request)
        email = field(body, "email", str, "")
        phone = field(body, "phone", str, "")
        password = field(body, "password", str)
        data = field(body, "data", dict)
        app_data = field(body, "app_metadata", dict)
        nonce = field(body, "nonce", str, "")
        if email:
            email = users.validate_email(email)
        if password is not None:
            users.check_password_strength(password)
        async with ctx.auth_pool.connection() as conn:
            caller = await sessions.require_user(conn, ctx, request, claims)
            user = caller.user
            assert user is not None
            if app_data is not None and user["role"] not in sessions.ADMIN_ROLES:
                raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
            changes_login = (
                bool(password)
                or bool(email and email != (user["email"] or "").lower())
                or bool(phone and phone != (user["phone"] or ""))
            )
            if changes_login and await sessions.below_mfa(conn, caller):
                # GoTrue's UserUpdate: a password alone must not take over an account that MFA protects
                raise AuthError(
                    401, "insufficient_aal", "AAL2 session is required to update email or password when MFA is enabled."
                )
            if phone and phone != (user["phone"] or ""):
                raise bad_request("phone_provider_disabled", "Phone changes are not supported by localbase")
            new_email = email if email and email != (user["email"] or "").lower() else None
            if new_email and await users.email_taken(conn, new_email, user["id"]):
                raise users.email_exists_error()
            new_hash = None
            if password and nonce:
                self._check_nonce(user, nonce)
            if password:
                if await users.password_matches(password, user["encrypted_password"]):
                    raise AuthError(422, "same_password", "New password should be different from the old password.")
                new_hash = await users.hash_password(password)
            try:
                async with conn.transaction():
                    await self._apply_user_update(
                        conn, caller, new_email=new_email, new_hash=new_hash, data=data, app_data=app_data
                    )
            except Exception as exc:
                if users.unique_violation(exc):
                    raise users.email_exists_error() from exc
                raise
            return JSONResponse(await users.load_json(conn, user["id"]))

    def _check_nonce(self, user: dict[str, Any], nonce: str) -> None:
        """GoTrue's verifyReauthentication: the code `/reauthenticate` emailed, unexpired."""
        expected = user["reauthentication_token"]
        if not expected or user["reauthentication_sent_at"] is None:
            raise AuthError(422, "reauthentication_not_valid", "Requested reauthentication is invalid")
        if not emails.token_matches(emails.token_hash(user["email"] or "", nonce), expected) or emails.is_expired(
            user["reauthentication_sent_at"], self.settings
        ):
            raise AuthError(422, "reauthentication_not_valid", "Requested reauthentication is invalid")

    @staticmethod
    async def _apply_user_update(
        conn: Any,
        caller: sessions.Caller,
        *,
        new_email: str | None,
        new_hash: str | None,
        data: dict[str, Any] | None,
        app_data: dict[str, Any] | None,
    ) -> None:
        assert caller.user is not None
        uid = str(caller.user["id"])
        locked = await users.find_by_id(conn, uid, lock=True)
        if locked is None:
            raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
        if new_hash is not None:
            await conn.execute(
                "update auth.users set encrypted_password = %s, reauthentication_token = '',"
                " updated_at = now() where id = %s",
                (new_hash, uid),
            )
            # a new password logs every other session out, as GoTrue's UpdatePassword does
            if caller.session_id is not None:
                await conn.execute(
                    "delete from auth.sessions where user_id = %s and id <> %s", (uid, str(caller.session_id))
                )
            else:
                await conn.execute("delete from auth.sessions where user_id = %s", (uid,))
        if data is not None:
            merged = users.merge_metadata(locked["raw_user_meta_data"], data)
            await conn.execute(
                "update auth.users set raw_user_meta_data = %s, updated_at = now() where id = %s", (Jsonb(merged), uid)
            )
        if app_data is not None:
            merged = users.merge_metadata(locked["raw_app_meta_data"], app_data)
            await conn.execute(
                "update auth.users set raw_app_meta_data = %s, updated_at = now() where id = %s", (Jsonb(merged), uid)
            )
        if new_email is not None:
            await admin.set_email(conn, uid, new_email, confirmed=True)

    async def logout(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "") or "global"
        if scope not in ("global", "local", "others"):
            raise bad_request("validation_failed", f"Unsupported logout scope {scope!r}")
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            caller = await sessions.require_user(conn, ctx, request)
            await sessions.logout(conn, caller, scope)
        return Response(status_code=204)

    async def settings_view(self, request: Request) -> Response:
        providers = [
            "anonymous_users",
            "apple",
            "azure",
            "bitbucket",
            "discord",
            "facebook",
            "snapchat",
            "figma",
            "fly",
            "github",
            "gitlab",
            "google",
            "keycloak",
            "kakao",
            "linkedin",
            "linkedin_oidc",
            "notion",
            "spotify",
            "slack",
            "slack_oidc",
            "workos",
            "twitch",
            "twitter",
            "email",
            "phone",
            "zoom",
        ]
        return JSONResponse(
            {
                "external": {name: name == "email" for name in providers},
                "disable_signup": False,
                "mailer_autoconfirm": True,
                "mfa_enabled": True,
                "phone_autoconfirm": False,
                "sms_provider": "",
                "saml_enabled": False,
                "saml_private_key_next_configured": False,
                "passkeys_enabled": False,
            }
        )

    async def jwks(self, request: Request) -> Response:
        """No asymmetric keys: HS256 tokens are checked by the server (clients then call GET /user)."""
        return JSONResponse({"keys": []})

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": GOTRUE_VERSION,
                "name": "GoTrue",
                "description": "GoTrue is a user registration and authentication API",
            }
        )


def limited(bucket: Bucket, limits: RateLimits, handler: Handler) -> Handler:
    """`handler` behind the caller's IP bucket, checked before the body is read."""

    async def endpoint(request: Request) -> Response:
        limits.check(bucket, request)
        return await handler(request)

    return endpoint


def mount(mailer: Mailer | None = None) -> Mount:
    settings = AuthSettings.from_env()
    limits = RateLimits.from_env()
    verifier = Verifier(settings)
    api = AuthAPI(settings, limits, verifier)
    admin_api = admin.AdminAPI()
    flows = EmailFlows(settings, mailer or Mailer.from_env(), limits)
    factors = Factors(settings)
    table: list[tuple[str, Handler, list[str]]] = [
        ("/signup", api.signup, ["POST"]),
        ("/token", api.token, ["POST"]),
        ("/user", api.get_user, ["GET"]),
        ("/user", api.update_user, ["PUT"]),
        ("/logout", api.logout, ["POST"]),
        ("/settings", api.settings_view, ["GET"]),
        ("/admin/users", admin_api.list_users, ["GET"]),
        ("/admin/users", admin_api.create_user, ["POST"]),
        ("/admin/users/{user_id}", admin_api.get_user, ["GET"]),
        ("/admin/users/{user_id}", admin_api.update_user, ["PUT"]),
        ("/admin/users/{user_id}", admin_api.delete_user, ["DELETE"]),
        ("/otp", limited(Bucket.OTP, limits, flows.otp), ["POST"]),
        ("/magiclink", limited(Bucket.OTP, limits, flows.otp), ["POST"]),
        ("/recover", limited(Bucket.OTP, limits, flows.recover), ["POST"]),
        ("/resend", limited(Bucket.OTP, limits, flows.resend), ["POST"]),
        ("/reauthenticate", flows.reauthenticate, ["GET"]),
        ("/invite", flows.invite, ["POST"]),
        ("/admin/generate_link", flows.generate_link, ["POST"]),
        ("/sso", flows.sso, ["POST"]),
        ("/factors", factors.enroll, ["POST"]),
        ("/factors/{factor_id}/challenge", limited(Bucket.MFA, limits, factors.challenge), ["POST"]),
        ("/factors/{factor_id}/verify", limited(Bucket.MFA, limits, factors.verify), ["POST"]),
        ("/factors/{factor_id}", factors.unenroll, ["DELETE"]),
        ("/admin/users/{user_id}/factors", factors.admin_list, ["GET"]),
        ("/admin/users/{user_id}/factors/{factor_id}", factors.admin_delete, ["DELETE"]),
    ]
    # Supabase's gateway leaves /verify open (`auth-v1-open`): email links carry no API key
    routes = [
        Route("/health", guarded(api.health, needs_key=False), methods=["GET"]),
        Route("/verify", guarded(limited(Bucket.VERIFY, limits, verifier.get), needs_key=False), methods=["GET"]),
        Route("/verify", guarded(limited(Bucket.VERIFY, limits, verifier.post), needs_key=False), methods=["POST"]),
        Route("/.well-known/jwks.json", guarded(api.jwks, needs_key=False), methods=["GET"]),
    ]
    routes += [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]
    routes.append(
        Route(
            "/{rest:path}",
            guarded(_unknown, needs_key=False),
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        )
    )
    return Mount("/auth/v1", routes=routes)


async def _unknown(request: Request) -> Response:
    """Anything else: a wrong method on a known path is 405, an unknown path 404 (JSON, like GoTrue)."""
    path = request.path_params.get("rest", "")
    known = (
        path
        in (
            "signup",
            "token",
            "user",
            "logout",
            "settings",
            "health",
            "admin/users",
            ".well-known/jwks.json",
            "otp",
            "magiclink",
            "recover",
            "resend",
            "verify",
            "reauthenticate",
            "invite",
            "admin/generate_link",
            "sso",
            "factors",
        )
        or (path.startswith("admin/users/") and path.count("/") in (2, 3, 4))
        or (path.startswith("factors/"))
    )
    if known:
        raise AuthError(405, "method_not_allowed", "Method Not Allowed")
    raise AuthError(404, "not_found", "Not Found")
