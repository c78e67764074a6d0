"""The agent workspace's rows (issue 14), the pure part: value types the UI reads, which tables and
columns a client may write, and the checks a row passes before it is queued.

The server's migrations ``20261129000530_agent_workspace.sql`` and ``20261129000540_sla.sql`` are the
truth; the checks here repeat their constraints so that bad input is refused with a plain reason at
once (and offline), instead of sitting in the outbox until the server refuses it. RLS still decides.

Writable tables and how a row is addressed and removed (``WRITABLE``):

    table            key                  remove = set        who (server RLS)
    tags             id                   deleted_at          admins
    ticket_tags      ticket_id, tag_id    removed_at          staff who see the ticket (re-adding clears it)
    canned_replies   id                   deleted_at          admins (shared) / the owner (personal)
    canned_reply_files id                 deleted_at          who may write the reply (its bytes are uploaded
                                                              first, sync/canned_files.py; mime and size are
                                                              the cache's until the server's row, from the
                                                              stored object, comes back)
    macros           id                   deleted_at          admins (shared) / the owner (personal)
    saved_views      id                   deleted_at          the owner
    customer_notes   id                   deleted_at          staff; the author or an admin edits/removes
    mentions         id                   (no removal)        the mentioned user marks seen_at
    sla_targets      priority             (no removal)        admins
    sla_settings     id (always true)     (no removal)        admins
    sla_business_hours id                 DELETE              admins (the cache keeps a local tombstone until sent)
    sla_holidays     day                  DELETE              admins (adding a day again renames it)

Snoozing is two steps: the ticket's status (``'pending'``), sent as the tickets' own compare-and-set
(sync/push.py), then the wake-up time as a ``SnoozeChange``, an upsert of the staff-only ``ticket_snoozes``
row (sync/snooze_push.py; migration ``20261216000100_ticket_snoozes.sql``: a customer reads their ticket's
row, so the time is not on it). The cache keeps the time on its own ticket row (sync/cache/snoozes.py).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal
from zoneinfo import available_timezones

WorkspaceTable = Literal[
    "tags",
    "ticket_tags",
    "canned_replies",
    "canned_reply_files",
    "macros",
    "saved_views",
    "customer_notes",
    "mentions",
    "ticket_sla",
    "ticket_snoozes",
    "sla_targets",
    "sla_settings",
    "sla_business_hours",
    "sla_holidays",
]
RowOp = Literal["insert", "update", "delete"]
ViewSort = Literal[
    "last_message_desc", "last_message_asc", "created_desc", "created_asc", "priority_desc", "sla_due_asc"
]
VIEW_SORTS: Final[tuple[ViewSort, ...]] = (
    "last_message_desc",
    "last_message_asc",
    "created_desc",
    "created_asc",
    "priority_desc",
    "sla_due_asc",
)

# pulled by cursor (sync_<table>), after the core tables: a tag before the ticket tags that use it
CURSOR_TABLES: Final = (
    "tags",
    "ticket_tags",
    "canned_replies",
    "canned_reply_files",
    "macros",
    "saved_views",
    "customer_notes",
    "mentions",
    "ticket_sla",
    "ticket_snoozes",  # no table in the cache: a row sets its ticket's snoozed_until (sync/cache/snoozes.py)
)
# small settings tables without a change cursor: read whole (staff only) and replaced in the cache
SNAPSHOT_TABLES: Final = ("sla_settings", "sla_targets", "sla_business_hours", "sla_holidays")


@dataclass(frozen=True)
class TableSpec:
    key: tuple[str, ...]
    columns: frozenset[str]  # what a client may set (the server stamps the rest)
    removed: str | None  # the tombstone column a removal sets, None when rows are never removed
    ticket_column: str | None = None  # which column names the row's ticket, if any
    hard_delete: bool = False  # the server row is DELETEd (``removed`` is then a tombstone in the cache only)


WRITABLE: Final[Mapping[str, TableSpec]] = {
    "tags": TableSpec(("id",), frozenset({"id", "name", "color"}), "deleted_at"),
    "ticket_tags": TableSpec(("ticket_id", "tag_id"), frozenset({"ticket_id", "tag_id"}), "removed_at", "ticket_id"),
    "canned_replies": TableSpec(("id",), frozenset({"id", "owner_id", "title", "body", "shortcut"}), "deleted_at"),
    "canned_reply_files": TableSpec(
        ("id",), frozenset({"id", "canned_reply_id", "name", "sha256", "object_path", "mime", "size"}), "deleted_at"
    ),
    "macros": TableSpec(("id",), frozenset({"id", "owner_id", "name", "reply", "actions"}), "deleted_at"),
    "saved_views": TableSpec(
        ("id",), frozenset({"id", "owner_id", "name", "filters", "sort", "position"}), "deleted_at"
    ),
    "customer_notes": TableSpec(("id",), frozenset({"id", "customer_id", "body"}), "deleted_at"),
    "mentions": TableSpec(("id",), frozenset({"seen_at"}), None, "ticket_id"),
    "sla_targets": TableSpec(("priority",), frozenset({"first_response_minutes", "next_response_minutes"}), None),
    "sla_settings": TableSpec(("id",), frozenset({"timezone"}), None),
    "sla_business_hours": TableSpec(
        ("id",), frozenset({"id", "weekday", "opens", "closes"}), "deleted_at", hard_delete=True
    ),
    "sla_holidays": TableSpec(("day",), frozenset({"day", "name"}), "deleted_at", hard_delete=True),
}
JSON_COLUMNS: Final = frozenset({"filters", "actions"})
# columns the cache shows at once but the server sets itself (never sent): a file's type and size
LOCAL_ONLY: Final[Mapping[str, frozenset[str]]] = {"canned_reply_files": frozenset({"mime", "size"})}


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    color: str
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class CannedReply:
    id: str
    owner_id: str | None  # None: shared (admin-managed)
    title: str
    body: str
    shortcut: str | None
    updated_at: str
    local_state: str = "sent"
    error: str | None = None

    @property
    def shared(self) -> bool:
        return self.owner_id is None


@dataclass(frozen=True)
class CannedFile:
    """A file a canned reply carries (``canned/<reply>/<name>`` in the attachments bucket)."""

    id: str
    canned_reply_id: str
    name: str
    mime: str
    size: int
    sha256: str
    object_path: str
    local_state: str = "sent"  # pending: added on this device, not on the server yet; failed: refused
    error: str | None = None


@dataclass(frozen=True)
class Macro:
    id: str
    owner_id: str | None
    name: str
    reply: str | None
    actions: Mapping[str, Any]
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class SavedView:
    id: str
    name: str
    filters: Mapping[str, Any]
    sort: ViewSort
    position: int
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class CustomerNote:
    id: str
    customer_id: str
    author_id: str
    body: str
    created_at: str
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class Mention:
    id: str
    message_id: str
    ticket_id: str
    author_id: str
    created_at: str
    seen_at: str | None


@dataclass(frozen=True)
class TicketSla:
    """A ticket's due times as the server computed them (canonical UTC text, None = no target)."""

    ticket_id: str
    first_response_due_at: str | None
    first_response_at: str | None  # from the ticket: None while the first response is owed
    next_response_due_at: str | None
    awaiting_reply_since: str | None
    created_at: str | None = None  # the ticket's: when the first-response clock started

    @property
    def due_at(self) -> str | None:
        """The deadline running now: the first response's while none was sent, else the next response's."""
        if self.first_response_at is None:
            return self.first_response_due_at
        return self.next_response_due_at

    @property
    def started_at(self) -> str | None:
        """When the running deadline's clock started."""
        return self.created_at if self.first_response_at is None else self.awaiting_reply_since


@dataclass(frozen=True)
class SlaTarget:
    priority: str
    first_response_minutes: int | None
    next_response_minutes: int | None


@dataclass(frozen=True)
class BusinessHours:
    """One span of business time on a weekday (1 = Monday .. 7), ``HH:MM`` in the SLA time zone."""

    id: str
    weekday: int
    opens: str
    closes: str
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class Holiday:
    """A whole day (``YYYY-MM-DD`` in the SLA time zone) that does not count as business time."""

    day: str
    name: str
    local_state: str = "sent"
    error: str | None = None


@dataclass(frozen=True)
class NewMessage:
    """A reply or internal note queued in the same local transaction as other steps (a macro)."""

    id: str
    ticket_id: str
    sender_id: str
    content: str
    is_internal: bool = False


@dataclass(frozen=True)
class TicketChange:
    """Field changes of a ticket (status, priority, assignee_id), sent as a compare-and-set."""

    ticket_id: str
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class SnoozeChange:
    """A ticket's wake-up time (canonical UTC text; None: no timed snooze), sent as an upsert of its
    ``ticket_snoozes`` row after the ticket's status change."""

    ticket_id: str
    until: str | None


@dataclass(frozen=True)
class RowWrite:
    """One row change for the outbox: ``row`` holds the key columns and, for insert/update, the values."""

    table: str
    op: RowOp
    row: Mapping[str, Any]


# one step of ``Workspace.apply``: queued with the others of its call in one local transaction, in order
Step = RowWrite | NewMessage | TicketChange | SnoozeChange


_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHORTCUT = re.compile(r"^[a-z0-9_-]{1,40}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _text(row: Mapping[str, Any], column: str, low: int, high: int, what: str) -> None:
    if column not in row:
        return
    value = row[column]
    if not isinstance(value, str) or not (low <= len(value) <= high) or (low and not value.strip()):
        raise ValueError(f"{what} must have {low} to {high} characters")


def _check_tags(write: RowWrite) -> None:
    row = write.row
    if "name" in row and isinstance(row["name"], str) and row["name"] != row["name"].strip():
        raise ValueError("a tag name cannot start or end with spaces")
    _text(row, "name", 1, 50, "a tag name")
    if "color" in row and not _COLOR.match(str(row["color"])):
        raise ValueError("a tag colour is written #rrggbb")
    if write.op == "insert" and "name" not in row:
        raise ValueError("a tag needs a name")


def _check_canned(write: RowWrite) -> None:
    row = write.row
    _text(row, "title", 1, 200, "a canned reply's title")
    _text(row, "body", 1, 20000, "a canned reply's text")
    if row.get("shortcut") is not None and not _SHORTCUT.match(str(row["shortcut"])):
        raise ValueError("a shortcut is 1 to 40 of a-z, 0-9, _ and -")
    if write.op == "insert" and not ("title" in row and "body" in row):
        raise ValueError("a canned reply needs a title and a text")


MACRO_ACTIONS: Final = frozenset({"status", "priority", "assignee", "add_tags", "remove_tags"})


def check_macro_actions(actions: Any) -> None:
    """A macro's ``actions`` as the server's ``private.valid_macro_actions`` takes them (ValueError if not)."""
    if not isinstance(actions, Mapping):
        raise ValueError("a macro's actions are an object")
    unknown = set(actions) - MACRO_ACTIONS
    if unknown:
        raise ValueError(f"a macro cannot set {', '.join(sorted(unknown))}")
    if "status" in actions and actions["status"] not in ("open", "pending", "resolved", "closed"):
        raise ValueError("a macro's status is open, pending, resolved or closed")
    if "priority" in actions and actions["priority"] not in ("low", "normal", "high", "urgent"):
        raise ValueError("a macro's priority is low, normal, high or urgent")
    if (
        "assignee" in actions
        and actions["assignee"] not in ("me", "none")
        and not _UUID.match(str(actions["assignee"]))
    ):
        raise ValueError("a macro assigns to me, nobody or a teammate")
    for key in ("add_tags", "remove_tags"):
        tags = actions.get(key, [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and _UUID.match(t) for t in tags):
            raise ValueError("a macro's tags are a list of tag ids")
    if len(json.dumps(actions).encode()) > 8000:
        raise ValueError("a macro's actions are too large")


def _check_macro(write: RowWrite) -> None:
    row = write.row
    _text(row, "name", 1, 200, "a macro's name")
    if row.get("reply") is not None:
        _text(row, "reply", 1, 10000, "a macro's reply")
    if "actions" in row:
        check_macro_actions(row["actions"])
    if write.op == "insert" and "name" not in row:
        raise ValueError("a macro needs a name")


def _check_view(write: RowWrite) -> None:
    row = write.row
    _text(row, "name", 1, 100, "a view's name")
    if "sort" in row and row["sort"] not in VIEW_SORTS:
        raise ValueError(f"a view's sort is one of {', '.join(VIEW_SORTS)}")
    if "filters" in row:
        if not isinstance(row["filters"], Mapping):
            raise ValueError("a view's filters are an object")
        if len(json.dumps(row["filters"]).encode()) > 8000:
            raise ValueError("a view's filters are too large")
    if write.op == "insert" and "name" not in row:
        raise ValueError("a view needs a name")


def _check_note(write: RowWrite) -> None:
    _text(write.row, "body", 1, 10000, "a note")
    if write.op == "insert" and not ("customer_id" in write.row and "body" in write.row):
        raise ValueError("a note needs a customer and a text")


def _check_target(write: RowWrite) -> None:
    for column in ("first_response_minutes", "next_response_minutes"):
        value = write.row.get(column)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ValueError("an SLA target is a positive number of minutes (or none)")
    if write.row.get("priority") not in ("low", "normal", "high", "urgent"):
        raise ValueError("an SLA target is per priority: low, normal, high or urgent")


def _check_settings(write: RowWrite) -> None:
    _text(write.row, "timezone", 1, 64, "a time zone")
    zone = write.row.get("timezone")
    if isinstance(zone, str) and len(_zones()) > 1 and zone not in _zones():
        raise ValueError(f"{zone!r} is not a time zone (an IANA name such as Europe/Berlin)")


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA zone names this machine knows (read once; the tzdata wheel on Windows)."""
    return frozenset(available_timezones()) | {"UTC"}


_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _check_hours(write: RowWrite) -> None:
    row = write.row
    if write.op == "insert" and not all(c in row for c in ("weekday", "opens", "closes")):
        raise ValueError("business hours need a weekday, an opening and a closing time")
    if "weekday" in row and (
        not isinstance(row["weekday"], int) or isinstance(row["weekday"], bool) or not 1 <= row["weekday"] <= 7
    ):
        raise ValueError("a weekday is 1 (Monday) to 7 (Sunday)")
    for column in ("opens", "closes"):
        if column in row and not (isinstance(row[column], str) and _TIME.match(row[column])):
            raise ValueError("business hours are written HH:MM (00:00 to 23:59)")
    if "opens" in row and "closes" in row and _hhmm(row["closes"]) <= _hhmm(row["opens"]):
        raise ValueError("business hours must close after they open (a night shift is two spans)")


def _hhmm(value: str) -> str:
    return value if len(value) == 8 else value + ":00"


HOLIDAY_YEARS: Final = (1970, 3000)  # a holiday's year: from the first, before the second


def _check_holiday(write: RowWrite) -> None:
    day = write.row.get("day")
    try:
        if not (isinstance(day, str) and _DAY.match(day)):
            raise ValueError
        when = date.fromisoformat(day)
    except ValueError:
        raise ValueError("a holiday is a date written YYYY-MM-DD") from None
    if not HOLIDAY_YEARS[0] <= when.year < HOLIDAY_YEARS[1]:  # the server's range (migration 20261214000200)
        raise ValueError(f"a holiday is a day from {HOLIDAY_YEARS[0]} to {HOLIDAY_YEARS[1] - 1}")
    if "name" in write.row:
        _text(write.row, "name", 0, 100, "a holiday's name")


_CHECKS: Final[Mapping[str, Callable[[RowWrite], None]]] = {
    "tags": _check_tags,
    "canned_replies": _check_canned,
    "macros": _check_macro,
    "saved_views": _check_view,
    "customer_notes": _check_note,
    "sla_targets": _check_target,
    "sla_settings": _check_settings,
    "sla_business_hours": _check_hours,
    "sla_holidays": _check_holiday,
}


def _check_shape(table: str, spec: TableSpec, row: Mapping[str, Any]) -> None:
    for column in spec.key:
        if row.get(column) in (None, ""):
            raise ValueError(f"{table} needs {column}")
    unknown = set(row) - spec.columns - set(spec.key)
    if unknown:
        raise ValueError(f"{table} has no writable column {', '.join(sorted(unknown))}")


def check_write(write: RowWrite) -> RowWrite:
    """The write as the server will take it, or ValueError with a plain reason (nothing is queued)."""
    spec = WRITABLE.get(write.table)
    if spec is None:
        raise ValueError(f"{write.table!r} is not a table the app writes")
    if write.op not in ("insert", "update", "delete"):
        raise ValueError(f"unknown row operation {write.op!r}")
    row = write.row
    _check_shape(write.table, spec, row)
    if write.op == "delete":
        if spec.removed is None:
            raise ValueError(f"{write.table} rows are not removed")
        return RowWrite(write.table, "delete", {k: row[k] for k in spec.key})
    if write.op == "insert" and write.table in ("mentions", "sla_targets", "sla_settings"):
        raise ValueError(f"{write.table} rows are not created by the app")
    for column in ("id", "tag_id", "ticket_id", "customer_id", "owner_id"):
        if row.get(column) is not None and row[column] is not True and not _UUID.match(str(row[column])):
            raise ValueError(f"{column} must be a uuid")
    check = _CHECKS.get(write.table)
    if check is not None:
        check(write)
    return write


def entity_key(table: str, row: Mapping[str, Any]) -> str:
    """The outbox ``entity_id`` of a row: its table and key, so entries of one row are found together."""
    spec = WRITABLE[table]
    return table + ":" + ":".join(str(row[k] if k in row else True) for k in spec.key)


@dataclass(frozen=True)
class InboxFilter:
    """What an inbox list shows: the base view, statuses, priorities, tags (any of), snoozed or not, SLA
    due soon, unread only; and its order. A saved view stores it as ``filters`` JSON plus ``sort``."""

    view: Literal["mine", "unassigned", "all"] = "all"
    statuses: tuple[str, ...] | None = None
    priorities: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    snoozed: bool = False  # True: only tickets snoozed until a later time; False: those are hidden
    breaching_within: int | None = None  # minutes: only tickets whose running SLA is due within this
    unread_only: bool = False
    sort: ViewSort = "last_message_desc"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"view": self.view}
        if self.statuses is not None:
            out["statuses"] = list(self.statuses)
        if self.priorities is not None:
            out["priorities"] = list(self.priorities)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.snoozed:
            out["snoozed"] = True
        if self.breaching_within is not None:
            out["breaching_within"] = self.breaching_within
        if self.unread_only:
            out["unread_only"] = True
        return out

    @classmethod
    def from_json(cls, filters: Mapping[str, Any], sort: str = "last_message_desc") -> InboxFilter:
        """A saved view's filters; anything unknown or malformed is ignored (a newer app may have saved it)."""
        view = filters.get("view")

        def strings(name: str) -> tuple[str, ...] | None:
            value = filters.get(name)
            return tuple(str(v) for v in value) if isinstance(value, list) else None

        within = filters.get("breaching_within")
        return cls(
            view=view if view in ("mine", "unassigned", "all") else "all",
            statuses=strings("statuses"),
            priorities=strings("priorities"),
            tags=strings("tags") or (),
            snoozed=filters.get("snoozed") is True,
            breaching_within=within if isinstance(within, int) and not isinstance(within, bool) else None,
            unread_only=filters.get("unread_only") is True,
            sort=next((s for s in VIEW_SORTS if s == sort), "last_message_desc"),
        )
