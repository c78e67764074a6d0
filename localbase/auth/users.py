"""Users as GoTrue stores and returns them: `auth.users` rows, their JSON, passwords and checks.

Passwords are bcrypt hashes (cost 10, GoTrue's default) in `encrypted_password`; hashing runs in a
worker thread so a sign-up never stalls the event loop. Email syntax is checked with a plain
pattern, as GoTrue does (`checkmail.ValidateFormat`): the `email-validator` library would also
reject special-use domains such as `.local`, which local installs and tests legitimately use.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import bcrypt
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from localbase.auth.errors import AuthError, bad_request, unprocessable, weak_password

BCRYPT_COST = 10
MIN_PASSWORD_LENGTH = 6
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past 72 bytes; GoTrue refuses longer passwords
MAX_EMAIL_LENGTH = 255
INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
AUDIENCE = "authenticated"
# local part per RFC 5322 "atext" dot-atoms, domain labels of letters/digits/hyphens, >= 2 labels
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
# compared against when the email is unknown, so a miss costs as much time as a wrong password
_DUMMY_HASH = bcrypt.hashpw(b"localbase-timing-equaliser", bcrypt.gensalt(BCRYPT_COST))

USER_COLUMNS = (
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone, phone_confirmed_at,"
    " confirmation_sent_at, confirmed_at, recovery_sent_at, email_change, last_sign_in_at,"
    " raw_app_meta_data, raw_user_meta_data, created_at, updated_at, banned_until, deleted_at,"
    " is_anonymous, is_sso_user, confirmation_token, recovery_token, reauthentication_token,"
    " reauthentication_sent_at"
)


def iso(value: datetime | None) -> str | None:
    """GoTrue's RFC 3339 timestamps, always UTC with a `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def validate_email(email: Any) -> str:
    if not isinstance(email, str) or not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL_RE.match(email):
        raise bad_request("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def check_password_strength(password: str) -> None:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise bad_request("validation_failed", f"Password cannot be longer than {MAX_PASSWORD_BYTES} characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise weak_password(["length"], f"Password should be at least {MIN_PASSWORD_LENGTH} characters.")


async def hash_password(password: str) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(BCRYPT_COST))
    return hashed.decode()


def _check(password: str, stored: str | None) -> bool:
    if not stored:
        bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], stored.encode())
    except ValueError:  # not a bcrypt hash (e.g. an imported argon2 one): cannot match
        return False


async def password_matches(password: str, stored: str | None) -> bool:
    return await asyncio.to_thread(_check, password, stored)


def valid_bcrypt_hash(value: str) -> bool:
    try:
        bcrypt.checkpw(b"", value.encode())
    except ValueError:
        return False
    return True


def is_banned(row: dict[str, Any]) -> bool:
    until: datetime | None = row.get("banned_until")
    return until is not None and until > datetime.now(UTC)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


async def find_by_id(
    conn: AsyncConnection[Any], user_id: uuid.UUID | str, *, lock: bool = False
) -> dict[str, Any] | None:
    sql = f"select {USER_COLUMNS} from auth.users where id = %s" + (" for update" if lock else "")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, (str(user_id),))
        return await cur.fetchone()


async def find_by_email(conn: AsyncConnection[Any], email: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"select {USER_COLUMNS} from auth.users where lower(email) = lower(%s) and is_sso_user = false"
            " and aud = %s",
            (email, AUDIENCE),
        )
        return await cur.fetchone()


async def email_taken(conn: AsyncConnection[Any], email: str, except_id: uuid.UUID | str | None = None) -> bool:
    cur = await conn.execute(
        "select 1 from auth.users where lower(email) = lower(%s) and is_sso_user = false and id is distinct from %s",
        (email, None if except_id is None else str(except_id)),
    )
    return await cur.fetchone() is not None


async def identities(conn: AsyncConnection[Any], user_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return (await identities_of(conn, [user_id])).get(str(user_id), [])


async def identities_of(conn: AsyncConnection[Any], user_ids: list[uuid.UUID | str]) -> dict[str, list[dict[str, Any]]]:
    """The identities of several users in one query, as GoTrue's JSON, keyed by user id."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at,"
            " email from auth.identities where user_id = any(%s::uuid[]) order by created_at, id",
            ([str(u) for u in user_ids],),
        )
        rows = await cur.fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        item: dict[str, Any] = {
            "identity_id": str(r["id"]),
            "id": r["provider_id"],
            "user_id": str(r["user_id"]),
            "identity_data": r["identity_data"],
            "provider": r["provider"],
        }
        if r["last_sign_in_at"] is not None:
            item["last_sign_in_at"] = iso(r["last_sign_in_at"])
        item["created_at"] = iso(r["created_at"])
        item["updated_at"] = iso(r["updated_at"])
        if r["email"]:
            item["email"] = r["email"]
        out.setdefault(str(r["user_id"]), []).append(item)
    return out


def user_json(
    row: dict[str, Any], idents: list[dict[str, Any]], factor_list: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The User object exactly as GoTrue marshals it (omitempty fields left out when empty)."""
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
    }
    optional_times = ("email_confirmed_at", "invited_at")
    for name in optional_times:
        if row[name] is not None:
            out[name] = iso(row[name])
    out["phone"] = row["phone"] or ""
    for name in ("phone_confirmed_at", "confirmation_sent_at", "confirmed_at", "recovery_sent_at"):
        if row[name] is not None:
            out[name] = iso(row[name])
    if row["email_change"]:
        out["new_email"] = row["email_change"]
    if row["last_sign_in_at"] is not None:
        out["last_sign_in_at"] = iso(row["last_sign_in_at"])
    out["app_metadata"] = row["raw_app_meta_data"] or {}
    out["user_metadata"] = row["raw_user_meta_data"] or {}
    out["identities"] = idents
    out["created_at"] = iso(row["created_at"])
    out["updated_at"] = iso(row["updated_at"])
    if row["banned_until"] is not None:
        out["banned_until"] = iso(row["banned_until"])
    if row["deleted_at"] is not None:
        out["deleted_at"] = iso(row["deleted_at"])
    if factor_list:  # omitempty, as GoTrue marshals it
        out["factors"] = factor_list
    out["is_anonymous"] = bool(row["is_anonymous"])
    return out


async def factors(conn: AsyncConnection[Any], user_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The user's MFA factors as GoTrue lists them on the User object (the secret never leaves)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, friendly_name, factor_type, status, created_at, updated_at, last_challenged_at"
            " from auth.mfa_factors where user_id = %s order by created_at",
            (str(user_id),),
        )
        rows = await cur.fetchall()
    return [
        {
            "id": str(r["id"]),
            "friendly_name": r["friendly_name"] or "",
            "factor_type": r["factor_type"],
            "status": r["status"],
            "created_at": iso(r["created_at"]),
            "updated_at": iso(r["updated_at"]),
            **({"last_challenged_at": iso(r["last_challenged_at"])} if r["last_challenged_at"] else {}),
        }
        for r in rows
    ]


async def load_json(conn: AsyncConnection[Any], user_id: uuid.UUID | str) -> dict[str, Any]:
    row = await find_by_id(conn, user_id)
    if row is None:
        raise AuthError(404, "user_not_found", "User not found")
    return user_json(row, await identities(conn, user_id), await factors(conn, user_id))


def merge_metadata(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """GoTrue's metadata update: keys set to null are removed, others replaced, the rest kept."""
    merged = dict(current or {})
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def insert_user(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID,
    email: str,
    password_hash: str | None,
    user_metadata: dict[str, Any],
    app_metadata: dict[str, Any],
    role: str,
    confirmed: bool,
) -> None:
    """Insert the user and its email identity (in the caller's transaction), as GoTrue does.

    The whole user is inserted in one statement so that `after insert` triggers (the profile
    trigger) see the final app_metadata, including a role set by the admin API.
    """
    await conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
        " raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
        " values (%s, %s, %s, %s, %s, %s, case when %s then now() end, %s, %s, now(), now())",
        (
            INSTANCE_ID,
            str(user_id),
            AUDIENCE,
            role,
            email,
            password_hash,
            confirmed,
            Jsonb(app_metadata),
            Jsonb(user_metadata),
        ),
    )
    identity_data: dict[str, Any] = {
        "sub": str(user_id),
        "email": email,
        "email_verified": confirmed,
        "phone_verified": False,
    }
    for key, value in user_metadata.items():
        identity_data.setdefault(key, value)
    await conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)"
        " values (%s, %s, %s, 'email', now())",
        (str(user_id), str(user_id), Jsonb(identity_data)),
    )


def unique_violation(exc: Exception) -> bool:
    return getattr(exc, "sqlstate", None) == "23505"


def email_exists_error() -> AuthError:
    return unprocessable("email_exists", "A user with this email address has already been registered")
