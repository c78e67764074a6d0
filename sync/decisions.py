"""Pure decisions of the sync engine: no I/O, no clock, no randomness of their own (callers pass
them in), so each is unit-tested in tests/test_sync_decisions.py.

- classify_code(): which branch of the error tree a server answer belongs to (retry, refresh, give up);
  library exceptions are mapped to it by type inside the adapter (sync/errormap.py)
- backoff_delay(): exponential backoff with jitter
- plan_batches() / bisect(): which outbox entries travel together, and how to isolate a bad row
- overlay_ticket() / resolve_ticket_update(): the merge rule for tickets changed offline
- stale_tickets() / needs_backfill(): what a pull must delete or backfill; ticket_digest(): the ids a prune
  compares with the server's (``rpc visible_tickets_digest``) before it lists them
- canonical_ts(): one timestamp format in the cache, so text order is time order
- probe_verdict(): whether the realtime link answers, from its ping, its pong and the last frame it brought
- channel_refusal(): whether the server refused a realtime channel because the user may not read its topic
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sync.errors import AuthError, PermanentError, RetryableError, SyncError

MAX_CONTENT = 10_000
MAX_SUBJECT = 200
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")

# PostgreSQL SQLSTATE classes that are about this row or request (retrying the same thing fails again)
_PERMANENT_SQLSTATE = re.compile(r"^(22|23|42|P0|2F|44)[0-9A-Z]{3}$")
# SQLSTATEs that are about the server's moment (serialization, deadlock, shutdown, resources, timeouts)
_RETRYABLE_SQLSTATE = re.compile(r"^(08|40|53|54|55|57|58|XX)[0-9A-Z]{3}$")
# PT401: a function's `raise sqlstate 'PT401'`, PostgREST's custom HTTP 401 (sync_status for a session that has
# ended, migration 20261213000100); postgrest-py does not always carry the status beside the code
_AUTH_CODES = frozenset({"PGRST300", "PGRST301", "PGRST302", "PGRST303", "PT401", "401"})


def classify_code(
    code: str | None, message: str = "", details: Any = None, hint: str | None = None, status: int | None = None
) -> SyncError:
    """Classify a server error answer by its code (PostgREST/PostgreSQL) and, if known, HTTP status.

    401 / PGRST301 / PGRST303 / PT401 → AuthError (refresh and retry); 42501 (RLS), 22xxx, 23xxx, other 4xx
    → PermanentError; 5xx, 408, 429, transient SQLSTATEs → RetryableError. An unknown code without
    a status is treated as retryable: giving up on a user's message needs a reason we understand.
    """
    kwargs: dict[str, Any] = {"code": code, "details": details, "hint": hint, "status": status}
    message = message or (f"server error {code}" if code else "server error")
    code_s = (code or "").strip()
    if code_s in _AUTH_CODES or (status == 401 and code_s != "42501"):
        return AuthError(message, **kwargs)
    if code_s == "42501" and status == 401:
        # RLS refusal while the request ran as anon: our token was not taken, which is an auth problem
        return AuthError(message, **kwargs)
    if _PERMANENT_SQLSTATE.match(code_s):
        return PermanentError(message, **kwargs)
    if _RETRYABLE_SQLSTATE.match(code_s):
        return RetryableError(message, **kwargs)
    http = status
    if http is None and code_s.isdigit() and len(code_s) == 3:
        http = int(code_s)  # postgrest-py puts the HTTP status in `code` when the body was not JSON
    if http is not None:
        if http >= 500 or http in (408, 425, 429):
            return RetryableError(message, **kwargs)
        if http == 401:
            return AuthError(message, **kwargs)
        if 400 <= http < 500:
            return PermanentError(message, **kwargs)
    if code_s.startswith("PGRST"):
        # PGRST1xx/2xx are request/schema errors (bad column, no such table): the same request fails again
        return PermanentError(message, **kwargs)
    return RetryableError(message, **kwargs)


def backoff_delay(attempt: int, rand: Callable[[], float], base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, capped, "equal jitter"
    (half fixed, half random) so many clients coming back at once do not retry in lockstep yet
    never retry immediately."""
    ceiling = min(cap, base * float(2 ** min(attempt, 30)))
    return float(ceiling / 2 + rand() * ceiling / 2)


@dataclass(frozen=True)
class OutboxEntry:
    """One queued local change, as the push planner sees it."""

    seq: int
    kind: str  # 'message' | 'ticket_create' | 'ticket_update' | 'read' | 'attachment_upload' | 'attachment'
    entity_id: str
    ticket_id: str
    payload: Mapping[str, Any]


BATCHABLE = frozenset({"message", "read", "ticket_create", "attachment"})


def plan_batches(entries: Sequence[OutboxEntry], max_batch: int) -> list[list[OutboxEntry]]:
    """Group the outbox (already in FIFO order) into requests: runs of consecutive entries of one
    batchable kind travel together, up to ``max_batch``; ticket updates go one by one (each is a
    compare-and-set on its own row). Order is kept, so a ticket is created before its first message
    and messages of a ticket arrive in the order they were written."""
    batches: list[list[OutboxEntry]] = []
    for entry in entries:
        last = batches[-1] if batches else None
        if last is not None and entry.kind in BATCHABLE and last[0].kind == entry.kind and len(last) < max_batch:
            last.append(entry)
        else:
            batches.append([entry])
    return batches


def bisect(batch: Sequence[OutboxEntry]) -> tuple[list[OutboxEntry], list[OutboxEntry]]:
    """Halves of a batch the server refused as a whole: send each half to isolate the bad row in
    O(log n) requests while the good rows still go in bulk."""
    middle = max(1, len(batch) // 2)
    return list(batch[:middle]), list(batch[middle:])


# a ticket's snooze is no field of it (the staff-only ``ticket_snoozes``, sync/snooze_push.py)
TICKET_FIELDS = ("status", "priority", "assignee_id")


def overlay_ticket(server_row: Mapping[str, Any], pending: Mapping[str, Any]) -> dict[str, Any]:
    """A pulled ticket row as the user sees it: the server's row with the user's still-unsent field
    changes on top (they are shown at once and will be checked by the server when pushed)."""
    merged = dict(server_row)
    for key, value in pending.items():
        if key in TICKET_FIELDS:
            merged[key] = value
    return merged


def resolve_ticket_update(
    base: Mapping[str, Any], wanted: Mapping[str, Any], server: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The merge rule for a ticket changed offline, decided against the server's current row.

    The rule: **the server's state wins field by field.** For each field the user changed, if the
    server's value still equals the value the user saw when changing it (``base``), the change is
    sent; if someone else changed that field meanwhile, the server's value stays and the field is
    reported as overruled, so the agent sees what happened. Fields nobody else touched go through,
    and RLS on the server still has the last word (a refusal fails the entry with its reason).

    Returns (fields to send, overruled fields with the server's value).
    """
    send: dict[str, Any] = {}
    overruled: dict[str, Any] = {}
    for key, wanted_value in wanted.items():
        current, value = server.get(key), wanted_value
        if current == value:
            continue  # already so on the server
        if key in base and base[key] != current:
            overruled[key] = current
        else:
            send[key] = value
    return send, overruled


def stale_tickets(local_ids: set[str], visible_ids: set[str], keep: set[str]) -> set[str]:
    """Cached tickets the server no longer shows this user (reassigned away, deleted), except those
    with unsent or failed local work the user still has to see (``keep``)."""
    return local_ids - visible_ids - keep


class TicketDigest(NamedTuple):
    """A set of ticket ids in four numbers, as ``rpc visible_tickets_digest`` computes it (migration
    20261210000900): the count, the XOR of the ids' first and of their last 64 bits as signed integers, and the
    exact sum of their first 64 bits. Order-free, so neither side sorts."""

    size: int
    xor_hi: int
    xor_lo: int
    sum_hi: int


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def ticket_digest(ids: Iterable[str]) -> TicketDigest:
    count = xor_hi = xor_lo = sum_hi = 0
    for ticket_id in ids:
        bits = int(ticket_id.replace("-", ""), 16)
        hi, lo = _signed64(bits >> 64), _signed64(bits & ((1 << 64) - 1))
        count, xor_hi, xor_lo, sum_hi = count + 1, xor_hi ^ hi, xor_lo ^ lo, sum_hi + hi
    return TicketDigest(count, xor_hi, xor_lo, sum_hi)


def needs_backfill(old: Mapping[str, Any] | None, new: Mapping[str, Any], messages_synced: bool) -> bool:
    """Whether a pulled ticket's thread must be fetched by ticket id: its older messages sit below
    the messages cursor when it just became visible (new to this cache, or its assignee changed,
    e.g. reassigned to me). Not needed during the very first pull, which fetches everything."""
    if not messages_synced:
        return False
    if old is None:
        return True
    return bool(old.get("assignee_id") != new.get("assignee_id"))


# The cache's first and last instant. PostgreSQL stores what Python's datetime cannot hold ('infinity', '-infinity',
# years past 9999, BC dates); migration 20261214000200 keeps users from writing them, but an older or compromised
# server may still send them, so they are clamped instead of refused: later than any real time reads as LATEST_TS,
# earlier as EARLIEST_TS. Both lie a day inside datetime's range, so converting them to any local time zone works,
# and text order stays time order.
EARLIEST_TS = "0001-01-02T00:00:00.000000+00:00"
LATEST_TS = "9999-12-30T00:00:00.000000+00:00"
_FAR_YEAR = re.compile(r"\+?\d{5,}-")  # PostgreSQL writes a year past 9999 with more digits


def canonical_ts(value: Any) -> str | None:
    """Timestamps as UTC ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``: one fixed width, so comparing the
    text compares the instants, whatever offset or precision the server sent. Whatever PostgreSQL can send reads:
    what lies outside [``EARLIEST_TS``, ``LATEST_TS``] is clamped to it (see there). Text that is no timestamp at
    all still raises ValueError (a pulled row holding it is set aside, ``Cache.apply_page``)."""
    if value is None or value == "":
        return None
    if (
        isinstance(value, str)
        and len(value) == 32
        and value.endswith("+00:00")
        and value[10] == "T"
        and value[19] == "."
        and EARLIEST_TS <= value < LATEST_TS
    ):
        return value  # already canonical (what PostgreSQL sends in UTC): skip parsing on the hot path
    if (
        isinstance(value, str)
        and value.endswith("+00:00")
        and value[10:11] == "T"
        and value[19:20] in (".", "+")
        and EARLIEST_TS <= value < LATEST_TS
    ):
        # PostgreSQL drops trailing zeros of the fraction (".21478", or none at all): pad them, no parsing
        # (a tenth of a million-message sync's timestamps took the slow path below)
        head, fraction = value[:19], value[20:-6]
        if len(value) == 25 or (1 <= len(fraction) <= 6 and fraction.isdigit()):
            return f"{head}.{fraction.ljust(6, '0')}+00:00"
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        lowered = text.lower()
        if lowered in ("infinity", "+infinity") or _FAR_YEAR.match(text):
            return LATEST_TS
        if lowered == "-infinity" or lowered.endswith(" bc"):
            return EARLIEST_TS
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ValueError(f"not a timestamp: {text[:60]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        text = dt.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:  # within a day of datetime's ends, in another offset
        return LATEST_TS if dt.year > 1 else EARLIEST_TS
    return min(max(text, EARLIEST_TS), LATEST_TS)


def check_content(content: str) -> str:
    """The message text as the server will accept it, or ValueError with a plain reason."""
    if not isinstance(content, str) or not content.strip():
        raise ValueError("a message cannot be empty")
    if len(content) > MAX_CONTENT:
        raise ValueError(f"a message can have at most {MAX_CONTENT} characters (this one has {len(content)})")
    return content


def check_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if not subject:
        raise ValueError("a ticket needs a subject")
    if len(subject) > MAX_SUBJECT:
        raise ValueError(f"a subject can have at most {MAX_SUBJECT} characters")
    return subject


def check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


ProbeVerdict = Literal["answers", "waiting", "silent"]


def probe_verdict(now: float, pinged_at: float, heard_at: float, ponged: bool, timeout: float) -> ProbeVerdict:
    """The realtime probe's reading of its link (sync/live.py): it ``answers`` once the pong came or any frame
    arrived after the ping (data and replies on a busy or slow server come before a late pong, and a socket still
    delivering is not dead), is ``silent`` when neither came within ``timeout`` seconds of the ping, and is still
    ``waiting`` before that."""
    if ponged or heard_at > pinged_at:
        return "answers"
    return "silent" if now - pinged_at >= timeout else "waiting"


ChannelRefusal = Literal["no-access", "other"]

# Supabase Realtime's words for a private channel its RLS check (on realtime.messages) refuses: at the join, after
# its error code (``Unauthorized: You do not have permissions to read from this Channel topic: <topic>``), and when
# a new access token is checked on a joined channel, without one; localbase words them the same. Not "You no longer
# have permission to read …" (one extension of a joined channel taken away): a new join may still be let in
_NO_ACCESS = re.compile(r"^(?:Unauthorized: )?You do not have permissions to read from this Channel topic")


def channel_refusal(error: str | None) -> ChannelRefusal:
    """Why the server refused or shut a realtime channel, from the error realtime-py reports with CHANNEL_ERROR (the
    JSON of the server's payload: a join's ``phx_reply`` ``{"reason": …}``, or a system error's ``{"message": …}``):
    ``no-access`` when its authorization said this user may not read the topic (joining again changes nothing until
    their access does), ``other`` for everything else (an expired token, a quota, the database unreachable, a
    closed socket), which a later join may get past."""
    text = error or ""
    try:
        payload = json.loads(text)
    except ValueError:
        payload = text
    if isinstance(payload, Mapping):
        payload = payload.get("reason") or payload.get("message") or ""
    return "no-access" if isinstance(payload, str) and _NO_ACCESS.match(payload) else "other"
