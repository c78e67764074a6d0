"""Fakes of the sync engine's ports, for fast unit tests of its loop (tests/test_sync_loop.py).

``FakeRemote`` is an in-memory server behind the ``Remote`` port (sync/remote.py), as httpx's
``MockTransport`` sits beside ``BaseTransport``: tables with the change cursor, upsert-on-id,
compare-and-set ticket updates, rotating tokens that expire by an injected ``FakeClock``, and
failure injection (``offline``, ``fail_next``, ``refuse``). It has no row-level security: what RLS
decides is proven against the real localbase; here a test says which rows the "server" refuses.
``MemorySessions`` is a ``SessionStore`` that keeps the session in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sync import RemoteConfig, SyncEngine
from sync.cache.writes import message_values
from sync.clock import Clock
from sync.decisions import TicketDigest, ticket_digest
from sync.errors import AuthError, PermanentError, RetryableError, SyncError
from sync.live import ChangeHandler, ReachHandler, StateHandler
from sync.remote import PAGE, CountAsk, Status, Tokens
from sync.session import StoredSession
from sync.workspace_rows import CURSOR_TABLES, SNAPSHOT_TABLES

# the key of a row in each table (default: id), as the fake server files rows
KEYS: dict[str, tuple[str, ...]] = {
    "ticket_reads": ("ticket_id", "user_id"),
    "ticket_tags": ("ticket_id", "tag_id"),
    "ticket_sla": ("ticket_id",),
    "ticket_snoozes": ("ticket_id",),
    "sla_targets": ("priority",),
    "sla_holidays": ("day",),
}


def row_key(table: str, row: Mapping[str, Any]) -> str:
    return ":".join(str(row[k]) for k in KEYS.get(table, ("id",)))


EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    now: float = EPOCH.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeUser:
    id: str
    email: str
    password: str
    role: str
    display_name: str


class FakeLive:
    """The ``live`` sub-port: records what the engine asked for; a test pushes changes and states."""

    def __init__(self) -> None:
        self.on_change: ChangeHandler | None = None
        self.on_state: StateHandler | None = None
        self.on_reach: ReachHandler | None = None
        self.watched: set[str] = set()
        self.typing_signals: list[str] = []
        self.access_hints: list[frozenset[str] | None] = []  # access_may_be_back's keys (None: all)

    async def start(
        self, on_change: ChangeHandler, on_state: StateHandler, on_reach: ReachHandler | None = None
    ) -> None:
        self.on_change, self.on_state, self.on_reach = on_change, on_state, on_reach

    async def stop(self) -> None:
        self.on_change = self.on_state = self.on_reach = None

    async def watch(
        self,
        ticket_id: str,
        me: Mapping[str, Any],
        on_presence: Callable[[list[dict[str, Any]]], None],
        on_typing: Callable[[dict[str, Any]], None],
    ) -> None:
        self.watched.add(ticket_id)

    async def unwatch(self, ticket_id: str) -> None:
        self.watched.discard(ticket_id)

    async def typing(
        self, ticket_id: str, me: Mapping[str, Any], after: str | None = None, *, known: bool = True
    ) -> None:
        self.typing_signals.append(ticket_id)

    async def watch_topic(
        self, topic: str, events: tuple[str, ...], on_signal: Callable[[str, dict[str, Any]], None]
    ) -> None:
        self.watched.add(topic)

    async def viewers(self, ticket_id: str | None) -> list[dict[str, Any]]:
        return []  # nobody else is viewing on the fake server

    def access_may_be_back(self, keys: Iterable[str] | None = None) -> None:
        self.access_hints.append(None if keys is None else frozenset(keys))


@dataclass
class FakeRemote:
    clock: FakeClock = field(default_factory=FakeClock)
    token_ttl: float = 3600.0
    offline: bool = False  # every call fails as the network would
    fail_next: list[SyncError] = field(default_factory=list)  # raised by the next calls, one each
    fail_on: dict[str, SyncError] = field(default_factory=dict)  # call name prefix -> raised once, before it runs
    lose_response: set[str] = field(default_factory=set)  # call name prefixes: done, then the answer is lost (once)
    refuse: Callable[[str, Mapping[str, Any]], str | None] = lambda table, row: None  # → reason to refuse a row
    refuse_refresh: bool = False
    unreadable: set[str] = field(default_factory=set)  # ids of rows RLS hides from this user (``ticket_owners``)
    users: dict[str, FakeUser] = field(default_factory=dict)
    tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {
            t: {}
            for t in (
                "profiles",
                "tickets",
                "messages",
                "attachments",
                "ticket_reads",
                "message_revisions",
                "attachment_deletions",  # the server's tombstones of deleted attachments (``delete_attachment``)
                *CURSOR_TABLES,
                *SNAPSHOT_TABLES,
            )
        }
    )
    calls: list[str] = field(default_factory=list)
    files: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)  # (bucket, key) → bytes, mime
    settings: dict[str, Any] = field(  # the project's app_settings row
        default_factory=lambda: {"edit_window_seconds": 900, "customers_see_read_receipts": True}
    )
    preferences: dict[str, Any] = field(default_factory=dict)  # the signed-in user's notification_preferences
    live: FakeLive = field(default_factory=FakeLive)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _refresh_tokens: dict[str, str] = field(default_factory=dict)  # valid refresh token -> user id
    _access: dict[str, tuple[str, float]] = field(default_factory=dict)  # access token -> (user id, expires at)
    _token: str | None = None
    _last_stamp: datetime = EPOCH

    # --- arranging ----------------------------------------------------------------------------------

    def add_user(self, role: str = "agent", name: str | None = None) -> FakeUser:
        uid = str(uuid.uuid4())
        user = FakeUser(uid, f"{role}-{uid[:8]}@example.com", "password", role, name or f"{role} {uid[:4]}")
        self.users[user.email] = user
        self.write(
            "profiles",
            {
                "id": uid,
                "role": role,
                "display_name": user.display_name,
                "avatar_url": None,
                "updated_at": self.stamp(),
            },
        )
        return user

    def add_ticket(self, customer: FakeUser, assignee: FakeUser | None, subject: str = "Help") -> str:
        tid = str(uuid.uuid4())
        now = self.stamp()
        self.write(
            "tickets",
            {
                "id": tid,
                "customer_id": customer.id,
                "assignee_id": assignee.id if assignee else None,
                "subject": subject,
                "status": "open",
                "priority": "normal",
                "created_at": now,
                "updated_at": now,
                "last_message_at": now,
            },
        )
        return tid

    def messages_of(self, ticket_id: str) -> list[dict[str, Any]]:
        """The server's thread in the order every reader sees it: (created_at, id)."""
        rows = [r for r in self.tables["messages"].values() if r["ticket_id"] == ticket_id]
        return sorted(rows, key=lambda r: (r["created_at"], r["id"]))

    def stamp(self) -> str:
        """The server's clock: strictly increasing per row, like migration 20261129000200."""
        stamp = max(datetime.fromtimestamp(self.clock.now, UTC), self._last_stamp + timedelta(microseconds=1))
        self._last_stamp = stamp
        return stamp.isoformat()

    def write(self, table: str, row: dict[str, Any]) -> None:
        """Put (or merge into) a row on the server as another client would have, with a new change id."""
        key = row_key(table, row)
        self.tables[table][key] = {
            **self.tables[table].get(key, {}),
            **row,
            "change_xid": 1,
            "change_id": next(self._seq),
        }

    def delete_attachment(self, attachment_id: str) -> None:
        """Delete an attachment row as a cleanup job would; the server's trigger leaves its tombstone."""
        row = self.tables["attachments"].pop(attachment_id)
        self.write(
            "attachment_deletions",
            {"id": attachment_id, "message_id": row["message_id"], "ticket_id": row["ticket_id"]},
        )

    # --- internals ----------------------------------------------------------------------------------

    def _enter(self, name: str, *, auth: bool = True) -> None:
        self.calls.append(name)
        if self.offline:
            raise RetryableError("network: connection refused", code="ConnectError")
        if self.fail_next:
            raise self.fail_next.pop(0)
        for prefix in list(self.fail_on):
            if name.startswith(prefix):
                raise self.fail_on.pop(prefix)
        if auth:
            user_id, expires = self._access.get(self._token or "", ("", 0.0))
            if not user_id or expires <= self.clock.now:
                raise AuthError("JWT expired", code="PGRST303", status=401)

    def _uid(self) -> str:
        """The signed-in user's id, as the server's ``auth.uid()`` (empty when no token)."""
        return self._access.get(self._token or "", ("", 0.0))[0]

    def _tokens(self, user: FakeUser) -> Tokens:
        access, refresh = f"access-{uuid.uuid4()}", f"refresh-{uuid.uuid4()}"
        expires = self.clock.now + self.token_ttl
        self._access[access] = (user.id, expires)
        self._refresh_tokens[refresh] = user.id
        return Tokens(access, refresh, int(expires), user.id, user.email)

    # --- the Remote port ----------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str) -> Tokens:
        self._enter("sign_in", auth=False)
        user = self.users.get(email)
        if user is None or user.password != password:
            raise AuthError("Invalid login credentials", code="invalid_credentials", status=400, refused=True)
        tokens = self._tokens(user)
        self._token = tokens.access_token
        return tokens

    async def refresh(self, refresh_token: str) -> Tokens:
        self._enter("refresh", auth=False)
        user_id = self._refresh_tokens.pop(refresh_token, None)  # rotation: a refresh token works once
        if self.refuse_refresh or user_id is None:
            raise AuthError("Invalid Refresh Token", code="refresh_token_not_found", status=400, refused=True)
        user = next(u for u in self.users.values() if u.id == user_id)
        tokens = self._tokens(user)
        self._token = tokens.access_token
        return tokens

    async def use_token(self, access_token: str) -> None:
        self._token = access_token

    async def sign_out(self) -> None:
        self._token = None

    async def profile(self, user_id: str) -> dict[str, Any] | None:
        self._enter("profile")
        return self.tables["profiles"].get(user_id)

    async def app_settings(self) -> dict[str, Any] | None:
        self._enter("app settings")
        return dict(self.settings)

    async def update_profile(self, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        self._enter("update profile")
        if user_id not in self.tables["profiles"]:
            return None
        self.write("profiles", {**self.tables["profiles"][user_id], **changes, "updated_at": self.stamp()})
        return dict(self.tables["profiles"][user_id])

    async def notification_preferences(self) -> dict[str, Any] | None:
        self._enter("notification preferences")
        return dict(self.preferences) if self.preferences else None

    async def pull(self, table: str, after: tuple[int, int], max_rows: int = PAGE) -> list[dict[str, Any]]:
        self._enter(f"pull {table}")
        rows = sorted(self.tables[table].values(), key=lambda r: (r["change_xid"], r["change_id"]))
        return [dict(r) for r in rows if (r["change_xid"], r["change_id"]) > after][:max_rows]

    async def pull_batch(self, table: str, after: tuple[int, int], max_rows: int = 10_000) -> list[dict[str, Any]]:
        # through ``pull`` (tests replace it to hold pages back), in its pages: the tests count pages of 1,000
        return await self.pull(table, after, min(max_rows, PAGE))

    async def pull_message_rows(self, after: tuple[int, int], max_rows: int = 10_000) -> list[list[Any]]:
        # as ``sync_message_rows``: ``MESSAGE_ROW`` arrays, canonical timestamps; through ``pull_batch``
        return [[*message_values(r), r["change_id"]] for r in await self.pull_batch("messages", after, max_rows)]

    async def count(self, table: str, after: tuple[int, int]) -> int:
        return sum(1 for r in self.tables[table].values() if (r["change_xid"], r["change_id"]) > after)

    def _in_scope(self, table: str, row: dict[str, Any], since: str) -> bool:
        ticket = row if table == "tickets" else self.tables["tickets"].get(str(row["ticket_id"]), {})
        return ticket.get("status") in ("open", "pending") or str(ticket.get("last_message_at", "")) >= since

    async def pull_scoped(
        self, table: str, after: tuple[int, int], since: str, max_rows: int = PAGE
    ) -> list[dict[str, Any]]:
        rows = await self.pull(table, after, len(self.tables[table]) + 1)
        return [r for r in rows if self._in_scope(table, r, since)][:max_rows]

    async def count_scoped(self, table: str, after: tuple[int, int], since: str) -> int:
        return len(await self.pull_scoped(table, after, since, len(self.tables[table]) + 1))

    async def status(self, cursors: Mapping[str, tuple[int, int]]) -> Status | None:
        """As ``rpc sync_status``: the tables with a row past their cursor, and a horizon. Every row here has
        change_xid 1 (no concurrent transactions), so the horizon is 1: a cursor moved to (1, 0) skips nothing."""
        self._enter("status")
        changed = {
            t
            for t, after in cursors.items()
            if any((r["change_xid"], r["change_id"]) > after for r in self.tables[t].values())
        }
        return Status(frozenset(changed), 1)

    async def counts(self, asks: Sequence[CountAsk]) -> list[int]:
        """Every table's count in one call, as ``rpc sync_counts`` does: each answered by this server's own
        ``count``/``count_scoped`` (so a test replacing those changes these answers too)."""
        self._enter("counts")
        return [
            await (
                self.count_scoped(a.table, a.after, a.since) if a.since is not None else self.count(a.table, a.after)
            )
            for a in asks
        ]

    async def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        return []

    async def insert_ignore(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int | None:
        self._enter(f"insert {table} x{len(rows)}")
        inserted = 0
        for row in rows:  # one statement: any refused row refuses them all, nothing is written
            reason = self.refuse(table, row)
            if reason is not None:
                raise PermanentError(reason, code="42501", status=403)
        for row in rows:
            if row_key(table, row) in self.tables[table]:
                continue  # ignore-duplicates: a resend changes nothing
            stamped = {**row, "created_at": self.stamp()}
            if table == "attachments":  # the server fills these from the token and the stored object
                self.tables["attachment_deletions"].pop(row_key(table, row), None)  # a re-insert: no tombstone
                data, mime = self.files.get(("attachments", str(row["object_path"])), (b"", "application/octet-stream"))
                stamped |= {"uploader_id": self._access[self._token or ""][0], "mime": mime, "size": len(data)}
            if table == "tickets":
                stamped |= {"updated_at": stamped["created_at"], "last_message_at": stamped["created_at"]}
            self.write(table, stamped)
            inserted += 1
        self._answer(f"insert {table}")
        return inserted

    def _answer(self, name: str) -> None:
        """The request committed; its response may still be lost on the way back."""
        for prefix in list(self.lose_response):
            if name.startswith(prefix):
                self.lose_response.discard(prefix)
                raise RetryableError("network: connection reset", code="RemoteProtocolError")

    async def upsert_merge(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> None:
        self._enter(f"upsert {table} x{len(rows)}")
        if table == "notification_preferences":  # one row, the caller's (the server takes user_id from the token)
            reason = self.refuse(table, rows[-1])
            if reason is not None:
                raise PermanentError(reason, code="23514")
            self.preferences = {**self.preferences, **rows[-1]}
            return
        for row in rows:
            reason = self.refuse(table, row)
            if reason is not None:
                raise PermanentError(reason, code="42501", status=403)
        for row in rows:
            self.write(table, dict(row))
        self._answer(f"upsert {table}")

    async def update_ticket(
        self, ticket_id: str, changes: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        self._enter("update ticket")
        row = self.tables["tickets"].get(ticket_id)
        if row is None or any(row.get(k) != v for k, v in expect.items()):
            return []
        self.write("tickets", {**row, **changes, "updated_at": self.stamp()})
        return [dict(self.tables["tickets"][ticket_id])]

    async def update_where(
        self, table: str, match: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """A PATCH: rows matching ``match`` (None = null) get ``changes`` ('now' = the server's clock); a row
        ``refuse`` names is filtered out as RLS's USING would (no error, no row)."""
        self._enter(f"update {table}")
        out = []
        for row in list(self.tables[table].values()):
            if any(row.get(k) != v if v is not None else row.get(k) is not None for k, v in match.items()):
                continue
            if self.refuse(table, {**row, **changes}) is not None:
                continue
            values = {k: self.stamp() if v == "now" else v for k, v in changes.items()}
            self.write(table, {**row, **values, "updated_at": self.stamp()})
            out.append(dict(self.tables[table][row_key(table, row)]))
        self._answer(f"update {table}")
        return out

    async def delete_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A DELETE: rows matching ``match`` go; a row ``refuse`` names stays, as RLS's USING would keep it."""
        self._enter(f"delete {table}")
        out = []
        for key, row in list(self.tables[table].items()):
            if any(row.get(k) != v for k, v in match.items()) or self.refuse(table, row) is not None:
                continue
            del self.tables[table][key]
            out.append(dict(row))
        return out

    async def select_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._enter(f"select {table}")
        return [
            dict(r)
            for r in self.tables[table].values()
            if all(r.get(k) == v if v is not None else r.get(k) is None for k, v in match.items())
        ]

    async def take_ticket(self, ticket_id: str) -> dict[str, Any]:
        """rpc take_ticket: assign to the signed-in user only if unassigned (no RLS here, as elsewhere)."""
        self._enter("take ticket")
        row = self.tables["tickets"].get(ticket_id)
        if row is None:
            raise PermanentError("no such ticket", code="P0002")
        me = self._access[self._token or ""][0]
        holder = row.get("assignee_id")
        if holder is None:
            self.write("tickets", {**row, "assignee_id": me, "updated_at": self.stamp()})
            holder, outcome = me, "taken"
        else:
            outcome = "already_yours" if holder == me else "lost"
        names = {u.id: u.display_name for u in self.users.values()}
        return {"outcome": outcome, "assignee_id": holder, "assignee_name": names.get(str(holder), "")}

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        self._enter("ticket")
        row = self.tables["tickets"].get(ticket_id)
        return dict(row) if row else None

    async def edit_message(self, message_id: str, seen: str, content: str) -> dict[str, Any] | None:
        """rpc edit_message: a compare-and-set on the text; keeps the replaced text as a revision."""
        self._enter("edit message")
        row = self.tables["messages"].get(message_id)
        if row is None or row.get("deleted_at") or row["content"] != seen:
            return None
        reason = self.refuse("messages:edit", row)
        if reason is not None:
            raise PermanentError(reason, code="42501", status=403)
        edited_at = self.stamp()
        self.write(
            "message_revisions",
            {
                "id": str(uuid.uuid4()),
                "message_id": message_id,
                "ticket_id": row["ticket_id"],
                "content": row["content"],
                "edited_by": row["sender_id"],
                "replaced_at": edited_at,
            },
        )
        self.write("messages", {**row, "content": content, "edited_at": edited_at})
        self._answer("edit message")
        return dict(self.tables["messages"][message_id])

    async def delete_message(self, message_id: str) -> dict[str, Any] | None:
        """PATCH deleted_at: the server clears the text and drops the revisions (a resend changes nothing)."""
        self._enter("delete message")
        row = self.tables["messages"].get(message_id)
        if row is None:
            return None
        reason = self.refuse("messages:delete", row)
        if reason is not None:
            raise PermanentError(reason, code="42501", status=403)
        if not row.get("deleted_at"):
            self.write("messages", {**row, "content": "", "deleted_at": self.stamp()})
            for key in [k for k, r in self.tables["message_revisions"].items() if r["message_id"] == message_id]:
                del self.tables["message_revisions"][key]
        self._answer("delete message")
        return dict(self.tables["messages"][message_id])

    async def message(self, message_id: str) -> dict[str, Any] | None:
        self._enter("message")
        row = self.tables["messages"].get(message_id)
        return dict(row) if row else None

    async def messages_not_mine(self, messages: Sequence[tuple[str, str]]) -> set[str]:
        """As the server's function: without RLS (``unreadable`` does not apply), the ids with no row of this
        user's in that ticket."""
        self._enter("messages not mine")
        if len(messages) > 100:
            raise PermanentError("messages_not_mine: at most 100 ids a call", code="22023")
        me = self._uid()
        rows = {m: self.tables["messages"].get(m) for m, _ in messages}
        return {
            m for m, t in messages if (r := rows[m]) is None or str(r["ticket_id"]) != t or r.get("sender_id") != me
        }

    async def ticket_owners(self, ids: Sequence[str]) -> dict[str, str]:
        self._enter("ticket owners")
        rows = (self.tables["tickets"].get(i) for i in ids)
        return {str(r["id"]): str(r["customer_id"]) for r in rows if r is not None and r["id"] not in self.unreadable}

    async def exists(self, table: str, row_id: str) -> bool:
        self._enter(f"exists {table}")
        return row_id in self.tables[table]

    async def visible_ticket_ids(self) -> set[str]:
        self._enter("visible tickets")
        return set(self.tables["tickets"])

    async def visible_tickets_digest(self) -> TicketDigest | None:
        self._enter("visible tickets digest")
        return ticket_digest(self.tables["tickets"])

    async def rows_of_ticket(self, table: str, ticket_id: str) -> list[dict[str, Any]]:
        self._enter(f"rows of ticket {table}")
        return [dict(r) for r in self.tables[table].values() if r["ticket_id"] == ticket_id]

    async def upload_file(self, bucket: str, key: str, path: Path, mime: str) -> None:
        self._enter(f"upload {bucket}")
        reason = self.refuse(f"storage:{bucket}", {"key": key, "mime": mime})
        if reason is not None:
            raise PermanentError(reason, code="403")
        self.files[(bucket, key)] = (path.read_bytes(), mime)

    async def upload_resumable(
        self,
        bucket: str,
        key: str,
        path: Path,
        mime: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        state: Path | None = None,
    ) -> None:
        """The resumable upload as one step (the real chunking is tested against localbase)."""
        data = path.read_bytes()
        if progress is not None:
            progress(0, len(data))
        await self.upload_file(bucket, key, path, mime)
        if progress is not None:
            progress(len(data), len(data))

    async def terminate_upload(self, url: str) -> None:
        self._enter("terminate upload")

    async def object_exists(self, bucket: str, key: str) -> bool:
        self._enter(f"exists {bucket}")
        return (bucket, key) in self.files

    async def remove_files(self, bucket: str, keys: Sequence[str]) -> None:
        self._enter(f"remove {bucket}")
        for key in keys:
            self.files.pop((bucket, key), None)
        self._answer(f"remove {bucket}")

    async def download_file(self, bucket: str, key: str, dest: Path, sha256: str | None = None) -> int:
        self._enter(f"download {bucket}")
        if (bucket, key) not in self.files:
            raise PermanentError("Object not found", code="404")
        data = self.files[(bucket, key)][0]
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise PermanentError("the downloaded file does not match its checksum", code="sha256")
        dest.write_bytes(data)
        return len(data)

    async def close(self) -> None:
        self.calls.append("close")


class MemorySessions:
    """A ``SessionStore`` in memory (the real ones write the OS keyring or a 0600 file)."""

    def __init__(self) -> None:
        self.session: StoredSession | None = None

    def load(self) -> StoredSession | None:
        return self.session

    def save(self, session: StoredSession) -> None:
        self.session = session

    def clear(self) -> None:
        self.session = None


def one_ticket_desk(messages: int) -> tuple[FakeRemote, FakeUser, str]:
    """A fake server with an agent, a customer and one ticket holding ``messages`` customer messages; the agent and
    the ticket's id."""
    server = FakeRemote()
    agent = server.add_user("agent", "Ann Agent")
    customer = server.add_user("customer", "Carl Customer")
    tid = server.add_ticket(customer, agent)
    for i in range(messages):
        server.write(
            "messages",
            {
                "id": str(uuid.uuid4()),
                "ticket_id": tid,
                "sender_id": customer.id,
                "content": f"message {i}",
                "is_internal": False,
                "created_at": server.stamp(),
            },
        )
    return server, agent, tid


async def fake_engine(server: FakeRemote, path: Path) -> SyncEngine:
    """An engine on ``server`` with its cache under ``path``: sessions in memory, the server's clock, no jitter."""
    return await SyncEngine.open(
        RemoteConfig("http://fake.invalid", "anon-key"),
        path,
        remote=server,
        sessions=MemorySessions(),
        clock=Clock(wall=server.clock, random=lambda: 0.0),
    )
