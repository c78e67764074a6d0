"""GoTrue's admin users API under /auth/v1/admin/users, for JWT roles service_role|supabase_admin.

`GET /admin/users?page=&per_page=` lists (newest first, `X-Total-Count` and `Link` headers),
`POST` creates, `GET|PUT|DELETE /admin/users/{id}` read, update and delete one user. Only this API
writes `app_metadata`; the `on_auth_user_role_changed` trigger then follows `app_metadata.role`
into `public.profiles.role`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.auth import sessions, users
from localbase.auth.errors import AuthError, bad_request, field, read_json
from localbase.context import context

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000
# Go's time.ParseDuration grammar: [-+]? then one or more <decimal><unit>
_DURATION_PART_SRC = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"^[-+]?(?:{_DURATION_PART_SRC})+$")
_DURATION_PART = re.compile(_DURATION_PART_SRC)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_ban_duration(value: str) -> timedelta | None:
    """`ban_duration` as GoTrue reads it: a Go duration ("24h", "1h30m") or "none" (unban => None)."""
    if value == "none" or value in ("0", "+0", "-0"):
        return None
    if len(value) > 64 or not _DURATION_RE.match(value):
        raise bad_request("validation_failed", f"invalid format for ban duration: time: invalid duration {value!r}")
    seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(value))
    if seconds > 1e10:  # GoTrue's int64 nanoseconds overflow around 292 years
        raise bad_request("validation_failed", f"invalid format for ban duration: time: invalid duration {value!r}")
    return timedelta(seconds=-seconds if value.startswith("-") else seconds)


async def set_email(conn: AsyncConnection[Any], user_id: str, email: str, *, confirmed: bool) -> None:
    """Change the email on the user and its email identity (creating the identity if missing)."""
    await conn.execute(
        "update auth.users set email = %s, email_change = '', updated_at = now(),"
        " email_confirmed_at = case when %s then coalesce(email_confirmed_at, now()) else email_confirmed_at end"
        " where id = %s",
        (email, confirmed, user_id),
    )
    cur = await conn.execute(
        "update auth.identities set identity_data = identity_data || %s, updated_at = now()"
        " where user_id = %s and provider = 'email'",
        (Jsonb({"email": email, "email_verified": confirmed}), user_id),
    )
    if cur.rowcount == 0:
        await conn.execute(
            "insert into auth.identities (provider_id, user_id, identity_data, provider) values (%s, %s, %s, 'email')",
            (
                user_id,
                user_id,
                Jsonb({"sub": user_id, "email": email, "email_verified": confirmed, "phone_verified": False}),
            ),
        )


def _role(body: dict[str, Any]) -> str:
    role: str = field(body, "role", str, "")
    if len(role) > 255:  # auth.users.role is varchar(255)
        raise bad_request("validation_failed", "role is too long")
    return role


def _ban_until(duration: timedelta | None) -> datetime | None:
    return None if duration is None else datetime.now(UTC) + duration


class AdminAPI:
    """Handlers of /admin/users; each one checks the admin role first."""

    async def list_users(self, request: Request) -> Response:
        ctx = context(request)
        page = self._positive(request, "page", 1)
        per_page = min(self._positive(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        needle = request.query_params.get("filter", "")
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where = "aud = %s and (%s = '' or email ilike %s or raw_user_meta_data ->> 'full_name' ilike %s)"
            args: tuple[Any, ...] = (users.AUDIENCE, needle, like, like)
            cur = await conn.execute(f"select count(*) from auth.users where {where}", args)
            total_row = await cur.fetchone()
            total = int(total_row[0]) if total_row else 0
            async with conn.cursor(row_factory=dict_row) as dcur:
                await dcur.execute(
                    f"select {users.USER_COLUMNS} from auth.users where {where}"
                    " order by created_at desc, id desc limit %s offset %s",
                    (*args, per_page, (page - 1) * per_page),
                )
                rows = await dcur.fetchall()
            idents = await users.identities_of(conn, [row["id"] for row in rows])
            listed = [users.user_json(row, idents.get(str(row["id"]), [])) for row in rows]
        headers = {"X-Total-Count": str(total)}
        last = max(1, -(-total // per_page))
        base = f"{ctx.api_url}/auth/v1/admin/users"
        links = []
        if page < last:
            links.append(f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
        links.append(f'<{base}?page={last}&per_page={per_page}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return JSONResponse({"users": listed, "aud": users.AUDIENCE}, headers=headers)

    @staticmethod
    def _positive(request: Request, name: str, default: int) -> int:
        raw = request.query_params.get(name, "")
        if raw == "":
            return default
        if not raw.isdigit() or int(raw) < 1 or int(raw) > 10**9:
            raise bad_request("validation_failed", f"Bad Pagination Parameters: {name} must be a positive integer")
        return int(raw)

    @staticmethod
    def _user_id(request: Request) -> str:
        parsed = users.parse_uuid(request.path_params["user_id"])
        if parsed is None:
            raise AuthError(404, "validation_failed", "user_id must be an UUID")
        return str(parsed)

    async def get_user(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            return JSONResponse(await users.load_json(conn, self._user_id(request)))

    async def create_user(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            body = await read_json(request)  # only admins get this far, so nobody else holds a connection
            email = field(body, "email", str, "")
            if field(body, "phone", str, ""):
                raise bad_request("phone_provider_disabled", "Phone users are not supported by localbase")
            if not email:
                raise bad_request("validation_failed", "Cannot create a user without either an email or phone")
            email = users.validate_email(email)
            if await users.email_taken(conn, email):
                raise users.email_exists_error()
            password = field(body, "password", str)
            password_hash = field(body, "password_hash", str, "")
            if password is not None and password_hash:
                raise bad_request("validation_failed", "Only a password or a password hash should be provided")
            if password_hash and not users.valid_bcrypt_hash(password_hash):
                raise bad_request("validation_failed", "Only bcrypt password hashes are supported by localbase")
            if not password_hash:
                if password:
                    if len(password.encode()) > users.MAX_PASSWORD_BYTES:
                        raise bad_request("validation_failed", "password length exceeds 72 bytes")
                else:
                    password = secrets.token_urlsafe(48)  # GoTrue, too, gives password-less users a random one
                password_hash = await users.hash_password(password)
            user_id = uuid.uuid4()
            if (raw_id := field(body, "id", str)) is not None:
                parsed = users.parse_uuid(raw_id)
                if parsed is None:
                    raise bad_request("validation_failed", "ID must conform to the uuid v4 format")
                if parsed.int == 0:
                    raise bad_request("validation_failed", "ID cannot be a nil uuid")
                if await users.find_by_id(conn, parsed) is not None:
                    raise AuthError(422, "user_already_exists", "A user with this ID already exists")
                user_id = parsed
            role = _role(body)
            app_meta = users.merge_metadata(
                {"provider": "email", "providers": ["email"]}, field(body, "app_metadata", dict, {})
            )
            ban = field(body, "ban_duration", str, "")
            banned_until = _ban_until(parse_ban_duration(ban)) if ban else None
            try:
                async with conn.transaction():
                    await users.insert_user(
                        conn,
                        user_id=user_id,
                        email=email,
                        password_hash=password_hash,
                        user_metadata=field(body, "user_metadata", dict, {}),
                        app_metadata=app_meta,
                        role=role or users.AUDIENCE,
                        confirmed=bool(field(body, "email_confirm", bool, False)),
                    )
                    if banned_until is not None:
                        await conn.execute(
                            "update auth.users set banned_until = %s where id = %s", (banned_until, str(user_id))
                        )
            except Exception as exc:
                if users.unique_violation(exc):
                    raise users.email_exists_error() from exc
                raise
            return JSONResponse(await users.load_json(conn, user_id))

    async def update_user(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            body = await read_json(request)  # only admins get this far, so nobody else holds a connection
            uid = self._user_id(request)
            email = field(body, "email", str, "")
            if email:
                email = users.validate_email(email)
            if field(body, "phone", str, ""):
                raise bad_request("phone_provider_disabled", "Phone users are not supported by localbase")
            password = field(body, "password", str)
            if password is not None:
                users.check_password_strength(password)
            ban = field(body, "ban_duration", str, "")
            ban_duration = parse_ban_duration(ban) if ban else None
            app_data = field(body, "app_metadata", dict)
            user_data = field(body, "user_metadata", dict)
            role = _role(body)
            confirm = bool(field(body, "email_confirm", bool, False))
            if (await users.find_by_id(conn, uid)) is None:
                raise AuthError(404, "user_not_found", "User not found")
            if email and await users.email_taken(conn, email, uid):
                raise users.email_exists_error()
            new_hash = await users.hash_password(password) if password else None
            try:
                async with conn.transaction():
                    locked = await users.find_by_id(conn, uid, lock=True)
                    if locked is None:
                        raise AuthError(404, "user_not_found", "User not found")
                    if role:
                        await conn.execute("update auth.users set role = %s where id = %s", (role, uid))
                    if confirm:
                        await conn.execute(
                            "update auth.users set email_confirmed_at = coalesce(email_confirmed_at,"
                            " now()) where id = %s",
                            (uid,),
                        )
                    if new_hash is not None:
                        # GoTrue's admin password change signs the user out everywhere
                        await conn.execute(
                            "update auth.users set encrypted_password = %s where id = %s", (new_hash, uid)
                        )
                        await conn.execute("delete from auth.sessions where user_id = %s", (uid,))
                    if email and email != (locked["email"] or ""):
                        await set_email(conn, uid, email, confirmed=confirm or locked["email_confirmed_at"] is not None)
                    if app_data is not None:
                        await conn.execute(
                            "update auth.users set raw_app_meta_data = %s where id = %s",
                            (Jsonb(users.merge_metadata(locked["raw_app_meta_data"], app_data)), uid),
                        )
                    if user_data is not None:
                        await conn.execute(
                            "update auth.users set raw_user_meta_data = %s where id = %s",
                            (Jsonb(users.merge_metadata(locked["raw_user_meta_data"], user_data)), uid),
                        )
                    if ban:
                        await conn.execute(
                            "update auth.users set banned_until = %s where id = %s", (_ban_until(ban_duration), uid)
                        )
                    await conn.execute("update auth.users set updated_at = now() where id = %s", (uid,))
            except Exception as exc:
                if users.unique_violation(exc):
                    raise users.email_exists_error() from exc
                raise
            return JSONResponse(await users.load_json(conn, uid))

    async def delete_user(self, request: Request) -> Response:
        ctx = context(request)
        async with ctx.auth_pool.connection() as conn:
            await sessions.require_admin(conn, ctx, request)
            body = await read_json(request, allow_empty=True)
            uid = self._user_id(request)
            soft = bool(field(body, "should_soft_delete", bool, False))
            async with conn.transaction():
                locked = await users.find_by_id(conn, uid, lock=True)
                if locked is None:
                    raise AuthError(404, "user_not_found", "User not found")
                if not soft:
                    await conn.execute("delete from auth.users where id = %s", (uid,))
                elif locked["deleted_at"] is None:
                    # GoTrue obfuscates; dropping the email and password has the same effect locally:
                    # nobody can sign in as this user again, and the address is free for a new sign-up
                    await conn.execute(
                        "update auth.users set email = null, phone = null, encrypted_password = null,"
                        " raw_user_meta_data = '{}', deleted_at = now(), updated_at = now() where id = %s",
                        (uid,),
                    )
                    await conn.execute("delete from auth.identities where user_id = %s", (uid,))
                    await conn.execute("delete from auth.sessions where user_id = %s", (uid,))
        return JSONResponse({})
