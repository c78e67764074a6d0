"""The engine's one port to the server (``Remote``, with its realtime sub-port ``Remote.live``) and
its adapter on the official supabase-py async client (``SupabaseRemote``): auth, PostgREST, and
realtime (``RealtimeLink``, sync/live.py). A fake of the port for tests lives in tests/fakes.py.

Every adapter method raises only the sync error tree (sync/errormap.py maps httpx, postgrest and
supabase_auth exceptions by type), so the engine's decisions never see a library's exception type.

Client settings chosen on purpose: ``auto_refresh_token=False`` and ``persist_session=False`` — the
engine owns the session (it must survive offline restarts and never be dropped by a background
refresh that failed for lack of network); ``postgrest_client_retry=False`` — the engine's own
backoff decides when to retry, woken by timer and reconnect; one httpx client with explicit
timeouts, so a stalled connection becomes a RetryableError instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

import httpx
import orjson
from postgrest.exceptions import APIError, APIErrorFromJSON, generate_default_error_message
from postgrest.types import CountMethod, ReturnMethod
from pydantic import ValidationError
from supabase import AsyncClientOptions, acreate_client

from sync import tus
from sync.closing_transport import ClosingTransport
from sync.decisions import TicketDigest
from sync.errormap import map_exception, storage_api_error
from sync.errors import AuthError, PermanentError, SyncError
from sync.live import ChangeHandler, ChangeKind, ReachHandler, RealtimeLink, StateHandler
from sync.models import MESSAGE_ROW, Enrollment, Factor, RemoteConfig
from sync.tus import Progress

log = logging.getLogger(__name__)

# rows asked per request: Supabase's default max rows, and the sync RPCs' own cap. A project may lower
# max rows, so table reads page on until an empty page rather than stopping at a short one.
PAGE = 1000
BATCH = 10_000  # rows per ``pull_batch`` (the initial sync's pages)
BATCH_TABLES = frozenset({"profiles", "tickets", "messages", "ticket_reads"})  # what sync_batch serves
DOWNLOAD_CHUNK = 256 * 1024


class Status(NamedTuple):
    """``sync_status``'s answer: the tables with a row past their cursor that the caller may select, and the
    snapshot's horizon (every transaction below it had ended), to which a table not named may move its cursor."""

    changed: frozenset[str]
    horizon: int


class CountAsk(NamedTuple):
    """One table's question for the initial sync's progress total: its rows past ``after`` (and, for a partial
    sync, within the scope that starts at ``since``)."""

    table: str
    after: tuple[int, int]
    since: str | None = None


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: int
    user_id: str
    email: str
    # a verified TOTP factor this password-only (aal1) session must still answer before it is used
    factor_id: str | None = None


__all__ = [
    "BATCH",
    "BATCH_TABLES",
    "MESSAGE_ROW",
    "PAGE",
    "ChangeHandler",
    "ChangeKind",
    "LivePort",
    "ReachHandler",
    "Remote",
    "StateHandler",
    "SupabaseRemote",
    "Tokens",
]


class LivePort(Protocol):
    """Realtime: row changes on the synced tables, and per-ticket viewing/typing signals."""

    async def start(
        self, on_change: ChangeHandler, on_state: StateHandler, on_reach: ReachHandler | None = None
    ) -> None: ...
    async def stop(self) -> None: ...
    async def watch(
        self,
        ticket_id: str,
        me: Mapping[str, Any],
        on_presence: Callable[[list[dict[str, Any]]], None],
        on_typing: Callable[[dict[str, Any]], None],
    ) -> None: ...
    async def unwatch(self, ticket_id: str) -> None: ...
    async def watch_topic(
        self, topic: str, events: tuple[str, ...], on_signal: Callable[[str, dict[str, Any]], None]
    ) -> None: ...
    async def typing(
        self, ticket_id: str, me: Mapping[str, Any], after: str | None = None, *, known: bool = True
    ) -> None: ...
    async def viewers(self, ticket_id: str | None) -> list[dict[str, Any]]: ...
    def access_may_be_back(self, keys: Iterable[str] | None = None) -> None: ...


class Remote(Protocol):
    """What the engine needs from a server. Every method raises only ``SyncError`` subclasses."""

    @property
    def live(self) -> LivePort: ...

    async def sign_in(self, email: str, password: str) -> Tokens: ...
    async def refresh(self, refresh_token: str) -> Tokens: ...
    async def use_token(self, access_token: str) -> None: ...
    async def sign_out(self) -> None: ...
    # two-step sign-in (sync/mfa.py): each call runs on the given session, verify answers new tokens
    async def mfa_factors(self, access_token: str, refresh_token: str) -> list[Factor]: ...
    async def mfa_enroll(self, access_token: str, refresh_token: str, friendly_name: str) -> Enrollment: ...
    async def mfa_verify(self, access_token: str, refresh_token: str, factor_id: str, code: str) -> Tokens: ...
    async def mfa_unenroll(self, access_token: str, refresh_token: str, factor_id: str) -> None: ...
    async def profile(self, user_id: str) -> dict[str, Any] | None: ...
    async def app_settings(self) -> dict[str, Any] | None: ...
    async def notification_preferences(self) -> dict[str, Any] | None: ...
    async def update_profile(self, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None: ...
    async def pull(self, table: str, after: tuple[int, int], max_rows: int = PAGE) -> list[dict[str, Any]]: ...
    async def count(self, table: str, after: tuple[int, int]) -> int: ...
    async def pull_batch(self, table: str, after: tuple[int, int], max_rows: int = BATCH) -> list[dict[str, Any]]: ...
    async def pull_message_rows(self, after: tuple[int, int], max_rows: int = BATCH) -> list[list[Any]]: ...
    async def pull_scoped(
        self, table: str, after: tuple[int, int], since: str, max_rows: int = PAGE
    ) -> list[dict[str, Any]]: ...
    async def count_scoped(self, table: str, after: tuple[int, int], since: str) -> int: ...
    async def counts(self, asks: Sequence[CountAsk]) -> list[int]: ...
    async def status(self, cursors: Mapping[str, tuple[int, int]]) -> Status | None: ...
    async def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]: ...
    async def insert_ignore(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int | None: ...
    async def upsert_merge(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> None: ...
    async def update_ticket(
        self, ticket_id: str, changes: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> list[dict[str, Any]]: ...
    async def ticket(self, ticket_id: str) -> dict[str, Any] | None: ...
    async def update_where(
        self, table: str, match: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> list[dict[str, Any]]: ...
    async def select_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]: ...
    async def delete_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]: ...
    async def edit_message(self, message_id: str, seen: str, content: str) -> dict[str, Any] | None: ...
    async def delete_message(self, message_id: str) -> dict[str, Any] | None: ...
    async def message(self, message_id: str) -> dict[str, Any] | None: ...
    async def messages_not_mine(self, messages: Sequence[tuple[str, str]]) -> set[str]: ...
    async def ticket_owners(self, ids: Sequence[str]) -> dict[str, str]: ...
    async def take_ticket(self, ticket_id: str) -> dict[str, Any]: ...
    async def exists(self, table: str, row_id: str) -> bool: ...
    async def visible_ticket_ids(self) -> set[str]: ...
    async def visible_tickets_digest(self) -> TicketDigest | None: ...
    async def rows_of_ticket(self, table: str, ticket_id: str) -> list[dict[str, Any]]: ...
    async def upload_file(self, bucket: str, key: str, path: Path, mime: str) -> None: ...
    async def upload_resumable(
        self,
        bucket: str,
        key: str,
        path: Path,
        mime: str,
        *,
        progress: Progress | None = None,
        state: Path | None = None,
    ) -> None: ...
    async def terminate_upload(self, url: str) -> None: ...
    async def object_exists(self, bucket: str, key: str) -> bool: ...
    async def download_file(self, bucket: str, key: str, dest: Path, sha256: str | None = None) -> int: ...
    async def remove_files(self, bucket: str, keys: Sequence[str]) -> None: ...
    async def close(self) -> None: ...


class SupabaseRemote:
    """``Remote`` on supabase-py's async client."""

    def __init__(self, config: RemoteConfig, timeout: float = 20.0) -> None:
        self.config = config
        self.timeout = timeout
        self._client: Any = None
        self._http: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._live = RealtimeLink(self)
        self._ids_in_one_page = True  # the last listing of visible ticket ids fit in one page: count the next one's

    @property
    def live(self) -> RealtimeLink:
        return self._live

    @property
    def current_client(self) -> Any:
        return self._client

    async def client(self) -> Any:
        if self._client is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                follow_redirects=True,
                transport=ClosingTransport(),  # a close leaves no connection open (sync/closing_transport.py)
            )
            realtime_options: Any = {
                "auto_reconnect": False,
                "max_retries": 1,
                "initial_backoff": 0.5,
                "timeout": int(max(self.timeout, 1)),
            }
            options = AsyncClientOptions(
                auto_refresh_token=False,
                persist_session=False,
                postgrest_client_retry=False,
                httpx_client=self._http,
                realtime=realtime_options,
            )
            try:
                self._client = await acreate_client(self.config.url, self.config.anon_key, options)
            except Exception as exc:
                raise map_exception(exc) from exc
            if self._token:
                self._apply_token(self._token)
        return self._client

    def _apply_token(self, token: str) -> None:
        client = self._client
        header = f"Bearer {token}"
        client.options.headers["Authorization"] = header
        client.postgrest.auth(token)
        client._storage = None  # supabase-py builds its storage client once, from the headers of that moment

    async def call(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``fn(client)``; any library error comes out as the sync error tree."""
        client = await self.client()
        try:
            return await fn(client)
        except SyncError:
            raise
        except Exception as exc:
            raise map_exception(exc) from exc

    # --- auth -------------------------------------------------------------------------------------

    @staticmethod
    def _tokens(response: Any) -> Tokens:
        session = getattr(response, "session", None)
        if session is None:
            raise AuthError("the server returned no session", refused=True)
        return Tokens(
            session.access_token,
            session.refresh_token,
            int(session.expires_at or 0),
            str(session.user.id),
            str(session.user.email or ""),
        )

    async def sign_in(self, email: str, password: str) -> Tokens:
        async def run(c: Any) -> tuple[Any, str | None]:
            response = await c.auth.sign_in_with_password({"email": email, "password": password})
            level = await c.auth.mfa.get_authenticator_assurance_level()
            if level.next_level != "aal2" or level.current_level == "aal2":
                return response, None
            totp = (await c.auth.mfa.list_factors()).totp  # the verified TOTP factors
            return response, (str(totp[0].id) if totp else None)

        response, factor_id = await self.call(run)
        tokens = self._tokens(response)
        if factor_id is not None:  # not used until its code is verified (mfa_verify)
            return replace(tokens, factor_id=factor_id)
        await self.use_token(tokens.access_token)
        return tokens

    async def refresh(self, refresh_token: str) -> Tokens:
        response = await self.call(lambda c: c.auth.refresh_session(refresh_token))
        tokens = self._tokens(response)
        await self.use_token(tokens.access_token)
        return tokens

    async def use_token(self, access_token: str) -> None:
        self._token = access_token
        # the realtime link keeps the token even before the client exists (a session restored at start):
        # without it the first join went out with the anon key and every postgres_changes event came back
        # "Error 401: Unauthorized", so a restarted app heard nothing live until a token refresh
        await self.live.set_token(access_token)
        if self._client is not None:
            self._apply_token(access_token)

    async def sign_out(self) -> None:
        if self._client is None or self._token is None:
            return
        try:
            await self.call(lambda c: c.auth.sign_out({"scope": "local"}))
        except SyncError as exc:  # offline sign-out still signs out locally
            log.info("server sign-out skipped: %s", exc)

    # --- MFA (sync/mfa.py) ---------------------------------------------------------------------------

    @staticmethod
    async def _on_session(c: Any, access_token: str, refresh_token: str) -> None:
        """supabase-py's ``auth.mfa`` works on the auth client's own session: make it this one. The engine
        hands a token far from expiry, so ``set_session`` only asks who the user is, and the client never
        refreshes (and so rotates) the refresh token behind the engine's back."""
        await c.auth.set_session(access_token, refresh_token)

    async def mfa_factors(self, access_token: str, refresh_token: str) -> list[Factor]:
        async def run(c: Any) -> Any:
            await self._on_session(c, access_token, refresh_token)
            return await c.auth.mfa.list_factors()

        listed = await self.call(run)
        return [
            Factor(str(f.id), str(f.friendly_name or ""), "verified" if f.status == "verified" else "unverified")
            for f in listed.all
            if f.factor_type == "totp"
        ]

    async def mfa_enroll(self, access_token: str, refresh_token: str, friendly_name: str) -> Enrollment:
        async def run(c: Any) -> Any:
            await self._on_session(c, access_token, refresh_token)
            # an enrolment abandoned before its first code stays behind unverified: clear it first
            for factor in (await c.auth.mfa.list_factors()).all:
                if factor.status != "verified":
                    await c.auth.mfa.unenroll({"factor_id": factor.id})
            params = {"factor_type": "totp", "friendly_name": friendly_name, "issuer": "SupportChat"}
            return await c.auth.mfa.enroll(params)

        enrolled = await self.call(run)
        if enrolled.totp is None:
            raise AuthError("the server did not return a TOTP secret", refused=True)
        return Enrollment(str(enrolled.id), enrolled.totp.secret, enrolled.totp.uri)

    async def mfa_verify(self, access_token: str, refresh_token: str, factor_id: str, code: str) -> Tokens:
        async def run(c: Any) -> Any:
            await self._on_session(c, access_token, refresh_token)
            return await c.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": code})

        verified = await self.call(run)
        tokens = Tokens(
            verified.access_token,
            verified.refresh_token,
            int(time.time()) + int(verified.expires_in),
            str(verified.user.id),
            str(verified.user.email or ""),
        )
        await self.use_token(tokens.access_token)
        return tokens

    async def mfa_unenroll(self, access_token: str, refresh_token: str, factor_id: str) -> None:
        async def run(c: Any) -> Any:
            await self._on_session(c, access_token, refresh_token)
            return await c.auth.mfa.unenroll({"factor_id": factor_id})

        await self.call(run)

    # --- REST -------------------------------------------------------------------------------------

    async def profile(self, user_id: str) -> dict[str, Any] | None:
        res = await self.call(lambda c: c.table("profiles").select("*").eq("id", user_id).execute())
        return res.data[0] if res.data else None

    async def app_settings(self) -> dict[str, Any] | None:
        """The project's server-side settings (``app_settings``, one row every signed-in user reads)."""
        res = await self.call(lambda c: c.table("app_settings").select("*").limit(1).execute())
        return dict(res.data[0]) if res.data else None

    async def update_profile(self, user_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Change a profile (RLS: one's own; admins any) and return the server's row, or None if not visible."""
        res = await self.call(lambda c: c.table("profiles").update(dict(changes)).eq("id", user_id).execute())
        return dict(res.data[0]) if res.data else None

    async def notification_preferences(self) -> dict[str, Any] | None:
        """The signed-in user's row (RLS shows only one's own), or None when they never chose."""
        res = await self.call(lambda c: c.table("notification_preferences").select("*").limit(1).execute())
        return dict(res.data[0]) if res.data else None

    async def pull(self, table: str, after: tuple[int, int], max_rows: int = PAGE) -> list[dict[str, Any]]:
        params = {"after_xid": after[0], "after_id": after[1], "max_rows": max_rows}
        res = await self.call(lambda c: c.rpc(f"sync_{table}", params).execute())
        return list(res.data or [])

    async def pull_batch(self, table: str, after: tuple[int, int], max_rows: int = BATCH) -> list[dict[str, Any]]:
        """``pull`` in pages of up to 10,000 rows (``sync_batch``, migration 20261202000300: one JSON answer, so
        one RLS setup per 10,000 rows instead of per 1,000); for the tables in ``BATCH_TABLES``."""
        params = {"table_name": table, "after_xid": after[0], "after_id": after[1], "max_rows": max_rows}
        return list(await self._rpc_json("sync_batch", params))

    async def pull_message_rows(self, after: tuple[int, int], max_rows: int = BATCH) -> list[list[Any]]:
        """The initial sync's pages of messages as arrays (``sync_message_rows``, migration 20261204000300):
        ``MESSAGE_ROW`` order, canonical timestamps; what ``pull_batch("messages", ...)`` brings, without a
        dict per row."""
        params = {"after_xid": after[0], "after_id": after[1], "max_rows": max_rows}
        return list(await self._rpc_json("sync_message_rows", params))

    async def _rpc_json(self, fn: str, params: Mapping[str, Any]) -> Any:
        async def run(c: Any) -> Any:
            # the official client's request (its session, URL and auth headers), decoded by orjson: a page of
            # 10,000 rows is ~15 MB of JSON, and the stdlib decoder inside postgrest-py was a third of the event
            # loop's time during a 1M-message initial sync (issue 15)
            response = await c.rpc(fn, dict(params)).request.send(httpx.Headers())
            if not response.is_success:
                try:
                    raise APIError(dict(APIErrorFromJSON.model_validate_json(response.content)))
                except ValidationError as exc:
                    raise APIError(generate_default_error_message(response)) from exc
            return orjson.loads(response.content) or []

        return await self.call(run)

    async def count(self, table: str, after: tuple[int, int]) -> int:
        """Rows ``pull`` would still bring past ``after`` (RLS applies): the initial sync's progress total."""
        params = {"table_name": table, "after_xid": after[0], "after_id": after[1]}
        res = await self.call(lambda c: c.rpc("sync_count", params).execute())
        return int(res.data or 0)

    async def pull_scoped(
        self, table: str, after: tuple[int, int], since: str, max_rows: int = PAGE
    ) -> list[dict[str, Any]]:
        """``pull`` limited to the partial sync's tickets: open/pending or active since ``since``."""
        params = {"since": since, "after_xid": after[0], "after_id": after[1], "max_rows": max_rows}
        res = await self.call(lambda c: c.rpc(f"sync_{table}_scoped", params).execute())
        return list(res.data or [])

    async def count_scoped(self, table: str, after: tuple[int, int], since: str) -> int:
        params = {"table_name": table, "since": since, "after_xid": after[0], "after_id": after[1]}
        res = await self.call(lambda c: c.rpc("sync_count_scoped", params).execute())
        return int(res.data or 0)

    async def counts(self, asks: Sequence[CountAsk]) -> list[int]:
        """``count``/``count_scoped`` of every table in one request (``rpc sync_counts``, migration
        20261205000500; RLS applies to each): the answers in the order asked."""
        params = {
            "asks": [
                {"table": a.table, "after_xid": a.after[0], "after_id": a.after[1], "since": a.since} for a in asks
            ]
        }
        res = await self.call(lambda c: c.rpc("sync_counts", params).execute())
        return [int(n) for n in res.data or []]

    async def status(self, cursors: Mapping[str, tuple[int, int]]) -> Status | None:
        """The tables with a row past their cursor that this user may select, and the horizon the answer was
        computed under, in one request (``rpc sync_status``, migration 20261209000300; the tables are a superset
        of what their pages return: a table not named has an empty next page). None for an answer of another
        shape (the caller then pulls every table: nothing is skipped on a word it cannot read)."""
        params = {"cursors": {table: list(after) for table, after in cursors.items()}}
        res = await self.call(lambda c: c.rpc("sync_status", params).execute())
        answer, tables, horizon = res.data, None, None
        if isinstance(answer, dict):
            horizon, tables = answer.get("horizon"), answer.get("changed")
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            return None
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 0:
            return None
        return Status(frozenset(tables), horizon)

    async def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """The server's full-text search (RLS applies): subject and message hits, newest first."""
        params = {"query": query, "max_rows": limit}
        res = await self.call(lambda c: c.rpc("search_messages", params).execute())
        return list(res.data or [])

    async def insert_ignore(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int | None:
        """Insert, ignoring rows whose key is there already; returns how many rows the server inserted (its
        ``Content-Range: */n`` for ``count=exact``), None when it did not say."""
        # return=minimal: with representation PostgREST would apply SELECT policies to the new rows
        res = await self.call(
            lambda c: (
                c.table(table)
                .upsert(
                    [dict(r) for r in rows],
                    ignore_duplicates=True,
                    on_conflict=on_conflict,
                    returning=ReturnMethod.minimal,
                    count=CountMethod.exact,
                )
                .execute()
            )
        )
        return res.count if isinstance(res.count, int) else None

    async def upsert_merge(self, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> None:
        await self.call(
            lambda c: (
                c.table(table)
                .upsert([dict(r) for r in rows], on_conflict=on_conflict, returning=ReturnMethod.minimal)
                .execute()
            )
        )

    async def update_ticket(
        self, ticket_id: str, changes: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """A compare-and-set: update only if the fields still hold the ``expect`` values."""

        async def run(c: Any) -> Any:
            query = c.table("tickets").update(dict(changes)).eq("id", ticket_id)
            for key, value in expect.items():
                query = query.is_(key, "null") if value is None else query.eq(key, value)
            return await query.execute()

        res = await self.call(run)
        return list(res.data or [])

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        res = await self.call(lambda c: c.table("tickets").select("*").eq("id", ticket_id).execute())
        return res.data[0] if res.data else None

    @staticmethod
    def _match(query: Any, match: Mapping[str, Any]) -> Any:
        for key, value in match.items():
            query = query.is_(key, "null") if value is None else query.eq(key, value)
        return query

    async def update_where(
        self, table: str, match: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """PATCH the rows matching ``match`` (None matches null); returns the updated rows this user can read
        (none: nothing matched, or RLS's USING hid the row from the update)."""
        res = await self.call(lambda c: self._match(c.table(table).update(dict(changes)), match).execute())
        return list(res.data or [])

    async def delete_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
        """DELETE the rows matching ``match``; returns the deleted rows this user can read (none: nothing
        matched, or RLS's USING kept the row from this user's delete)."""
        res = await self.call(lambda c: self._match(c.table(table).delete(), match).execute())
        return list(res.data or [])

    async def select_where(self, table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows of a small table (a settings table whole, or one row by its key), as RLS shows them."""
        res = await self.call(lambda c: self._match(c.table(table).select("*"), match).limit(PAGE).execute())
        return list(res.data or [])

    async def edit_message(self, message_id: str, seen: str, content: str) -> dict[str, Any] | None:
        """A compare-and-set of a message's text (``rpc edit_message``): the updated row, or None when the
        server's row no longer holds ``seen`` (or is deleted, or not this user's to edit)."""
        params = {"message_id": message_id, "seen": seen, "content": content}
        res = await self.call(lambda c: c.rpc("edit_message", params).execute())
        return dict(res.data[0]) if res.data else None

    async def delete_message(self, message_id: str) -> dict[str, Any] | None:
        """Soft-delete (the server clears the text and stamps who and when): the tombstone, or None when this
        user may not update the row."""
        res = await self.call(
            lambda c: c.table("messages").update({"deleted_at": "now"}).eq("id", message_id).execute()
        )
        return dict(res.data[0]) if res.data else None

    async def message(self, message_id: str) -> dict[str, Any] | None:
        res = await self.call(lambda c: c.table("messages").select("*").eq("id", message_id).execute())
        return dict(res.data[0]) if res.data else None

    async def messages_not_mine(self, messages: Sequence[tuple[str, str]]) -> set[str]:
        """Of these (message id, ticket id) pairs, the ids the server holds no message of this user's under, in
        that ticket (``rpc messages_not_mine``, migration 20261215000700): another's message or none at all. The
        server answers without this user's RLS, so their own row in a ticket reassigned away still counts as theirs
        (review17c). 100 pairs a request, the function's bound."""

        def ask(chunk: Sequence[tuple[str, str]]) -> Callable[[Any], Awaitable[Any]]:
            params = {"message_ids": [m for m, _ in chunk], "ticket_ids": [t for _, t in chunk]}
            return lambda c: c.rpc("messages_not_mine", params).execute()

        held: set[str] = set()
        for start in range(0, len(messages), 100):
            res = await self.call(ask(messages[start : start + 100]))
            held.update(str(r) for r in res.data or [])
        return held

    async def ticket_owners(self, ids: Sequence[str]) -> dict[str, str]:
        """The customer of each of these tickets this user can read (RLS: a ticket this user may not read is
        left out), by id."""
        rows = await self._rows_in("tickets", "id,customer_id", ids)
        return {str(r["id"]): str(r["customer_id"]) for r in rows}

    async def _rows_in(self, table: str, columns: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """These columns of the rows with these ids this user can read (100 ids a request: the list travels in
        the request line)."""

        def ask(chunk: list[str]) -> Callable[[Any], Awaitable[Any]]:
            return lambda c: c.table(table).select(columns).in_("id", chunk).execute()

        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            res = await self.call(ask(list(ids[start : start + 100])))
            rows.extend(res.data or [])
        return rows

    async def take_ticket(self, ticket_id: str) -> dict[str, Any]:
        """The server's take (rpc take_ticket): {outcome, assignee_id, assignee_name}."""
        res = await self.call(lambda c: c.rpc("take_ticket", {"ticket": ticket_id}).execute())
        rows = res.data if isinstance(res.data, list) else [res.data]
        return dict(rows[0]) if rows and rows[0] else {}

    async def exists(self, table: str, row_id: str) -> bool:
        """Whether this user can read the row with this id (a refused resend may have landed before)."""
        res = await self.call(lambda c: c.table(table).select("id").eq("id", row_id).execute())
        return bool(res.data)

    async def visible_tickets_digest(self) -> TicketDigest | None:
        """The digest of the tickets this user may read (``rpc visible_tickets_digest``, migration
        20261210000900), one small answer; None for an answer of another shape."""
        res = await self.call(lambda c: c.rpc("visible_tickets_digest", {}).execute())
        answer = res.data
        if not isinstance(answer, dict):
            return None
        try:
            return TicketDigest(
                int(answer["count"]), int(answer["xor_hi"]), int(answer["xor_lo"]), int(answer["sum_hi"])
            )
        except (KeyError, TypeError, ValueError):
            return None

    async def visible_ticket_ids(self) -> set[str]:
        """Every ticket id this user may read, keyset-paged. While they fit in one page, the first page also asks
        for the exact count, which the server computes in the same statement (one snapshot): when that page holds
        them all, the ids are complete without asking for the empty page that otherwise ends the listing (a
        caught-up pull's prune was two requests, every poll of every client). A desk past one page is not counted
        (the count would be a second pass over every visible ticket, each poll) until a listing fits again."""
        ids: set[str] = set()
        last = ""
        counted = self._ids_in_one_page
        while True:
            after = last

            async def page(c: Any, after: str = after) -> Any:
                query = c.table("tickets")
                query = query.select("id", count=CountMethod.exact) if counted and not after else query.select("id")
                query = query.order("id").limit(PAGE)
                return await (query.gt("id", after) if after else query).execute()

            res = await self.call(page)
            batch = [str(r["id"]) for r in res.data or []]
            ids.update(batch)
            if not batch or (not after and res.count is not None and res.count <= len(batch)):
                # an empty page ends it (the server's max rows may be below PAGE), or a first page holding the count
                self._ids_in_one_page = len(ids) < PAGE
                return ids
            last = batch[-1]

    async def rows_of_ticket(self, table: str, ticket_id: str) -> list[dict[str, Any]]:
        """All rows of ``table`` for one ticket (a thread backfill), keyset-paged."""
        key = {
            "ticket_reads": "user_id",
            "ticket_tags": "tag_id",
            "ticket_sla": "ticket_id",
            "ticket_snoozes": "ticket_id",
        }.get(table, "id")
        rows: list[dict[str, Any]] = []
        last = ""
        while True:
            after = last

            async def page(c: Any, after: str = after) -> Any:
                query = c.table(table).select("*").eq("ticket_id", ticket_id).order(key).limit(PAGE)
                if after:
                    query = query.gt(key, after)
                return await query.execute()

            res = await self.call(page)
            batch = list(res.data or [])
            rows.extend(batch)
            if not batch:  # only an empty page ends it: the server's max rows may be below PAGE
                return rows
            last = str(batch[-1][key])

    # --- storage ----------------------------------------------------------------------------------

    async def upload_file(self, bucket: str, key: str, path: Path, mime: str) -> None:
        """Upload one file from disk (storage3 streams it as multipart). With upsert, so a retry after a
        lost response replaces the object with the same bytes instead of failing as a duplicate."""
        await self.call(lambda c: c.storage.from_(bucket).upload(key, path, {"content-type": mime, "upsert": "true"}))

    async def upload_resumable(
        self,
        bucket: str,
        key: str,
        path: Path,
        mime: str,
        *,
        progress: Progress | None = None,
        state: Path | None = None,
    ) -> None:
        """Upload one file through Storage's TUS endpoint in 6 MB chunks (sync/tus.py), upsert, reporting
        ``progress(bytes, size)``; with ``state`` an interrupted upload resumes at the server's offset."""
        await self.client()
        assert self._http is not None
        headers = {"apikey": self.config.anon_key, "Authorization": f"Bearer {self._token or self.config.anon_key}"}
        endpoint = tus.endpoint_of(self.config.url)
        await tus.TusUpload(self._http, endpoint, headers, bucket, key, path, mime, state, progress).run()

    async def terminate_upload(self, url: str) -> None:
        """Drop a partial resumable upload (a cancelled file's); one already gone is no error."""
        await self.client()
        assert self._http is not None
        headers = {"apikey": self.config.anon_key, "Authorization": f"Bearer {self._token or self.config.anon_key}"}
        await tus.terminate(self._http, url, headers)

    async def object_exists(self, bucket: str, key: str) -> bool:
        """Whether Storage still has the object (an upload from long ago may have been purged as an orphan)."""
        return bool(await self.call(lambda c: c.storage.from_(bucket).exists(key)))

    async def remove_files(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete objects (a deleted message's files, by their uploader); objects already gone are no error."""
        await self.call(lambda c: c.storage.from_(bucket).remove(list(keys)))

    async def download_file(self, bucket: str, key: str, dest: Path, sha256: str | None = None) -> int:
        """Stream one object into ``dest``, never whole in memory: chunks go into a temporary file beside it,
        hashed on the way, which replaces ``dest`` (atomic rename) only once complete and, with ``sha256``,
        matching. Returns the size.

        storage3's ``download`` returns the body as one bytes object (up to the bucket's 25 MB per file), so
        this is the same GET ``/storage/v1/object/<bucket>/<key>`` with the same headers, made through our
        httpx client's stream; a refusal's ``{statusCode, error, message}`` becomes storage3's StorageApiError
        and from there the error tree, as for every other Storage call."""
        await self.client()
        assert self._http is not None
        url = f"{self.config.url}/storage/v1/object/{quote(bucket, safe='')}/{_quoted_key(key)}"
        headers = {"apikey": self.config.anon_key, "Authorization": f"Bearer {self._token or self.config.anon_key}"}
        digest, size = hashlib.sha256(), 0
        fd, part = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    async with self._http.stream("GET", url, headers=headers) as response:
                        if response.status_code >= 400:
                            raise storage_api_error(response.status_code, await response.aread())
                        # writes of one chunk land in the page cache in microseconds: no thread hop per chunk
                        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                except Exception as exc:
                    raise map_exception(exc) from exc
            if sha256 is not None and digest.hexdigest() != sha256:
                raise PermanentError(
                    f"the downloaded file does not match its checksum ({size} bytes); it was not kept", code="sha256"
                )
            os.replace(part, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        return size

    async def close(self) -> None:
        await self.live.stop()
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.realtime.close(), 3.0)
            except Exception as exc:  # closing a socket that is already gone
                log.debug("realtime close: %s", exc)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _quoted_key(key: str) -> str:
    return "/".join(quote(part, safe="") for part in key.split("/"))
