"""The SQL of Storage: buckets and object rows, each verb one statement on a connection that
`session` already set up as the caller (RLS decides) or as the storage admin.

Object keys are checked here before any statement: Supabase Storage's character set
(S3-safe characters only), plus what a file path could misuse — empty, `.` and `..` segments, a
leading slash — refused outright (Supabase keeps bytes in S3, where such names are harmless; we
refuse them anyway, and never use names as file paths).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from localbase.storage import errors, mime

VALID_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
VALID_BUCKET = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]+$")
MAX_KEY_BYTES = 1024

SortColumn = Literal["name", "updated_at", "created_at", "last_accessed_at"]
SORT_COLUMNS: tuple[SortColumn, ...] = ("name", "updated_at", "created_at", "last_accessed_at")

OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at, last_accessed_at"
)


def check_key(key: str) -> str:
    segments = key.split("/")
    if (
        not key
        or len(key.encode()) > MAX_KEY_BYTES
        or not VALID_KEY.match(key)
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise errors.invalid_key(key)
    return key


def check_bucket_name(name: str) -> str:
    if not name or len(name) > 100 or not VALID_BUCKET.match(name):
        raise errors.invalid_bucket_name()
    return name


@dataclass(frozen=True)
class Bucket:
    id: str
    name: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: list[str] | None

    def allows(self, mimetype: str) -> bool:
        """Whether `mimetype` (an upload's normalized type, or a stored one) may be in this bucket; a
        type that does not parse strictly (`mime.parse`) never may, allowlist or not."""
        parsed = mime.parse(mimetype)
        if parsed is None:
            return False
        if not self.allowed_mime_types:
            return True
        base = mime.base_of(parsed)
        kind = base.split("/", 1)[0]
        for entry in self.allowed_mime_types:
            allowed = entry.strip().lower()
            if allowed == base or (allowed.endswith("/*") and allowed[:-2] == kind):
                return True
        return False


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def render(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in row.items()}


async def find_bucket(conn: AsyncConnection[Any], bucket_id: str) -> Bucket | None:
    cur = await conn.execute(
        "select id, name, public, file_size_limit, allowed_mime_types from storage.buckets where id = %s", (bucket_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Bucket(row[0], row[1], bool(row[2]), row[3], row[4])


BUCKET_COLUMNS = "id, name, owner, public, file_size_limit, allowed_mime_types, created_at, updated_at, type"


def render_bucket(row: dict[str, Any]) -> dict[str, Any]:
    out = render(row)
    out["owner"] = out["owner"] or ""  # storage3's bucket model wants a string; service-made buckets have none
    out["owner"] = str(out["owner"])
    return out


async def list_buckets(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"select {BUCKET_COLUMNS} from storage.buckets order by name")
    return [render_bucket(r) for r in await cur.fetchall()]


async def get_bucket(conn: AsyncConnection[Any], bucket_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"select {BUCKET_COLUMNS} from storage.buckets where id = %s", (bucket_id,))
    row = await cur.fetchone()
    return render_bucket(row) if row else None


async def find_object(
    conn: AsyncConnection[Any], bucket_id: str, name: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = %s and name = %s"
        + (" for update" if for_update else ""),
        (bucket_id, name),
    )
    return await cur.fetchone()


async def visible_names(conn: AsyncConnection[Any], bucket_id: str, names: list[str]) -> set[str]:
    cur = await conn.execute(
        "select name from storage.objects where bucket_id = %s and name = any(%s)", (bucket_id, names)
    )
    return {r[0] for r in await cur.fetchall()}


def object_metadata(size: int, mimetype: str, cache_control: str, etag: str, when: datetime) -> dict[str, Any]:
    """The `metadata` column as Supabase Storage writes it."""
    return {
        "eTag": etag,
        "size": size,
        "mimetype": mimetype,
        "cacheControl": cache_control,
        "lastModified": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "contentLength": size,
        "httpStatusCode": 200,
    }


async def insert_object(
    conn: AsyncConnection[Any],
    *,
    bucket_id: str,
    name: str,
    owner: str | None,
    version: str,
    metadata: dict[str, Any] | None,
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> dict[str, Any]:
    """Insert the row (or, with upsert, replace an existing one's content) and return it.

    A plain insert has no RETURNING, so that (as on Supabase) uploading needs an INSERT policy only;
    an upsert reads the existing row anyway, which needs SELECT and UPDATE policies.
    """
    object_id = str(uuid.uuid4())
    values = (
        object_id,
        bucket_id,
        name,
        owner if _is_uuid(owner) else None,
        owner,
        version,
        Jsonb(metadata) if metadata is not None else None,
        Jsonb(user_metadata) if user_metadata is not None else None,
    )
    insert = (
        "insert into storage.objects (id, bucket_id, name, owner, owner_id, version, metadata, user_metadata)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s)"
    )
    if not upsert:
        await conn.execute(insert, values)
        return {
            "id": object_id,
            "bucket_id": bucket_id,
            "name": name,
            "owner": owner,
            "owner_id": owner,
            "version": version,
            "metadata": metadata,
            "user_metadata": user_metadata,
        }
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        insert + " on conflict (bucket_id, name) do update set version = excluded.version,"
        " metadata = excluded.metadata, user_metadata = excluded.user_metadata, owner = excluded.owner,"
        f" owner_id = excluded.owner_id, last_accessed_at = now() returning {OBJECT_COLUMNS}",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


def _is_uuid(value: str | None) -> bool:
    return bool(value) and re.fullmatch(r"[0-9a-fA-F-]{36}", value or "") is not None


async def delete_objects(conn: AsyncConnection[Any], bucket_id: str, names: list[str]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"delete from storage.objects where bucket_id = %s and name = any(%s) returning {OBJECT_COLUMNS}",
        (bucket_id, names),
    )
    return await cur.fetchall()


async def move_object(
    conn: AsyncConnection[Any], bucket_id: str, source: str, *, dest_bucket: str, dest: str, owner: str | None
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "update storage.objects set bucket_id = %s, name = %s, owner = %s, owner_id = %s"
        f" where bucket_id = %s and name = %s returning {OBJECT_COLUMNS}",
        (dest_bucket, dest, owner if _is_uuid(owner) else None, owner, bucket_id, source),
    )
    return await cur.fetchone()


async def list_folder(
    conn: AsyncConnection[Any],
    bucket_id: str,
    prefix: str,
    *,
    limit: int,
    offset: int,
    search: str,
    sort_column: SortColumn,
    descending: bool,
) -> list[dict[str, Any]]:
    """One level of the bucket below `prefix`, folders as entries without id (storage.search v1)."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    pattern = _like_escape(prefix) + "%"
    direction = "desc" if descending else "asc"
    cur = conn.cursor(row_factory=dict_row)
    # sort_column is one of SORT_COLUMNS, checked by the caller; never client text in SQL
    await cur.execute(
        f"""
        with level as (
          select substr(name, char_length(%(prefix)s) + 1) as rest, id, updated_at, created_at,
                 last_accessed_at, metadata
          from storage.objects
          where bucket_id = %(bucket)s and name like %(pattern)s
        ), entries as (
          select split_part(rest, '/', 1) as name, null::uuid as id, null::timestamptz as updated_at,
                 null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata
          from level where position('/' in rest) > 0 group by 1
          union all
          select rest, id, updated_at, created_at, last_accessed_at, metadata
          from level where position('/' in rest) = 0
        )
        select * from entries
        where name ilike %(search)s
        order by {sort_column} {direction} nulls last, name collate "C" {direction}
        limit %(limit)s offset %(offset)s
        """,
        {
            "prefix": prefix,
            "bucket": bucket_id,
            "pattern": pattern,
            "search": _like_escape(search) + "%",
            "limit": limit,
            "offset": offset,
        },
    )
    return [render(r) for r in await cur.fetchall()]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
