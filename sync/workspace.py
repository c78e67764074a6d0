"""``Workspace``: the agent workspace's verbs for the UI (issue 14), reached as ``SyncEngine.workspace``.

Reads come from the cache (no network): tags, canned replies, macros, saved views, customer notes,
mentions, SLA due times and targets, the inbox filtered by a view. Writes are checked here (bad input
raises ValueError with a plain reason and queues nothing), applied to the cache at once and queued in
the outbox in ONE local transaction (``Cache.workspace.queue``), then pushed like messages: exactly once
in effect, refusals reported with the server's reason (sync/workspace_push.py).

``apply(steps)`` queues any mix of steps — ``reply``/``note`` messages, ``ticket`` changes, row writes —
in one transaction, in order: a macro is one call (reply + status + tags), all or nothing locally, and
the server gets its steps in that order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sync import events
from sync.cache import Cache
from sync.decisions import (
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    canonical_ts,
    check_choice,
    check_content,
)
from sync.models import LocalUser, Ticket
from sync.workspace_rows import (
    BusinessHours,
    CannedReply,
    CustomerNote,
    Holiday,
    InboxFilter,
    Macro,
    Mention,
    NewMessage,
    RowOp,
    RowWrite,
    SavedView,
    SlaTarget,
    SnoozeChange,
    Step,
    Tag,
    TicketChange,
    TicketSla,
    check_write,
)

# how far ahead a snooze may wake a ticket: the server refuses more than a year (migrations 20261214000200,
# 20261216000100)
SNOOZE_AHEAD = timedelta(days=365)


class Host(Protocol):
    """What the workspace needs of the signed-in user (the engine gives ``LocalWrites``, sync/signed_in.py):
    their cache, who they are, and a way to say a local write happened (refresh the counts, wake the loop,
    tell the UI)."""

    @property
    def cache(self) -> Cache: ...
    def signed_in_user(self) -> LocalUser: ...
    def local_write_done(self, changes: Sequence[events.Event]) -> None: ...


def _new_id() -> str:
    return str(uuid.uuid4())


def _renumber(views: Sequence[SavedView]) -> list[Step]:
    """Positions 0, 1, 2… for views in this order: a write for each view not already there."""
    return [
        RowWrite("saved_views", "update", {"id": v.id, "position": i}) for i, v in enumerate(views) if v.position != i
    ]


class Workspace:
    def __init__(self, host: Host) -> None:
        self._host = host

    @property
    def _cache(self) -> Cache:
        return self._host.cache

    # --- reads ----------------------------------------------------------------------------------------

    def inbox(self, f: InboxFilter, now: datetime | None = None, limit: int = 200) -> list[Ticket]:
        return self._cache.workspace.inbox(f, now or datetime.now(UTC), limit)

    def count_unread(self, f: InboxFilter, now: datetime | None = None) -> int:
        return self._cache.workspace.count_unread(f, now or datetime.now(UTC))

    def count(self, f: InboxFilter, now: datetime | None = None) -> int:
        return self._cache.workspace.count(f, now or datetime.now(UTC))

    def tags(self) -> list[Tag]:
        return self._cache.workspace.tags()

    def tags_of(self, ticket_ids: Sequence[str]) -> dict[str, list[Tag]]:
        return self._cache.workspace.tags_of(ticket_ids)

    def sla_of(self, ticket_ids: Sequence[str]) -> dict[str, TicketSla]:
        return self._cache.workspace.sla_of(ticket_ids)

    def canned_replies(self) -> list[CannedReply]:
        return self._cache.workspace.canned_replies()

    def macros(self) -> list[Macro]:
        return self._cache.workspace.macros()

    def saved_views(self) -> list[SavedView]:
        return self._cache.workspace.saved_views()

    def customer_notes(self, customer_id: str) -> list[CustomerNote]:
        return self._cache.workspace.customer_notes(customer_id)

    def mentions(self, unseen_only: bool = False) -> list[Mention]:
        return self._cache.workspace.mentions(unseen_only)

    def sla_targets(self) -> list[SlaTarget]:
        return self._cache.workspace.sla_targets()

    def sla_timezone(self) -> str:
        return self._cache.workspace.sla_timezone()

    def sla_business_hours(self) -> list[BusinessHours]:
        """The weekly business hours (no spans at all = round the clock), by weekday and time."""
        return self._cache.workspace.sla_business_hours()

    def sla_holidays(self) -> list[Holiday]:
        return self._cache.workspace.sla_holidays()

    def snoozed_until(self, ticket_id: str) -> str | None:
        return self._cache.workspace.snoozed_until(ticket_id)

    # --- steps, for apply() -------------------------------------------------------------------------------

    def reply_step(self, ticket_id: str, content: str, internal: bool = False) -> NewMessage:
        user = self._host.signed_in_user()
        check_content(content)
        if internal and not user.is_staff:
            raise ValueError("only agents can write internal notes")
        return NewMessage(_new_id(), ticket_id, user.id, content, internal)

    def ticket_step(self, ticket_id: str, **changes: Any) -> TicketChange:
        """status / priority / assignee_id changes of one ticket, checked (a snooze is ``snooze_step``)."""
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "status":
                checked[key] = check_choice(value, TICKET_STATUSES, "status")
            elif key == "priority":
                checked[key] = check_choice(value, TICKET_PRIORITIES, "priority")
            elif key == "assignee_id":
                checked[key] = None if value is None else str(value)
            else:
                raise ValueError(f"a ticket change cannot set {key!r}")
        if not checked:
            raise ValueError("a ticket change needs at least one field")
        return TicketChange(ticket_id, checked)

    def apply(self, steps: Iterable[Step]) -> set[str]:
        """Queue every step in one local transaction (all or nothing); returns the tickets touched."""
        checked: list[Step] = [check_write(s) if isinstance(s, RowWrite) else s for s in steps]
        if not checked:
            return set()
        touched = self._cache.workspace.queue(checked)
        changed: list[events.Event] = []
        tables = frozenset(s.table for s in checked if isinstance(s, RowWrite))
        if tables:
            changed.append(events.WorkspaceChanged(tables))
        if touched:
            changed.append(events.TicketsChanged(frozenset(touched)))
        for step in checked:
            if isinstance(step, NewMessage):
                changed.append(events.MessagesChanged(step.ticket_id, frozenset({step.id}), False))
        self._host.local_write_done(changed)
        return touched

    def _write(self, table: str, op: RowOp, row: Mapping[str, Any]) -> None:
        self.apply([RowWrite(table, op, dict(row))])

    # --- tags -------------------------------------------------------------------------------------------

    def add_tag(self, ticket_id: str, tag_id: str) -> None:
        self._write("ticket_tags", "insert", {"ticket_id": ticket_id, "tag_id": tag_id})

    def remove_tag(self, ticket_id: str, tag_id: str) -> None:
        self._write("ticket_tags", "delete", {"ticket_id": ticket_id, "tag_id": tag_id})

    def _admin(self, what: str) -> None:
        if self._host.signed_in_user().role != "admin":
            raise ValueError(f"only admins {what}")

    def create_tag(self, name: str, color: str = "#64748b") -> str:
        self._admin("define tags")
        name = name.strip()
        if any(t.name.lower() == name.lower() for t in self.tags()):
            raise ValueError(f"there is a tag named {name!r} already")
        tag_id = _new_id()
        self._write("tags", "insert", {"id": tag_id, "name": name, "color": color})
        return tag_id

    def update_tag(self, tag_id: str, *, name: str | None = None, color: str | None = None) -> None:
        self._admin("change tags")
        row: dict[str, Any] = {"id": tag_id}
        if name is not None:
            row["name"] = name.strip()
        if color is not None:
            row["color"] = color
        self._write("tags", "update", row)

    def delete_tag(self, tag_id: str) -> None:
        self._admin("remove tags")
        self._write("tags", "delete", {"id": tag_id})

    # --- canned replies -------------------------------------------------------------------------------------

    def save_canned_reply(
        self,
        title: str,
        body: str,
        *,
        shortcut: str | None = None,
        shared: bool = False,
        reply_id: str | None = None,
    ) -> str:
        """Create (no ``reply_id``) or change a canned reply; shared ones are the admins'."""
        user = self._host.signed_in_user()
        if not user.is_staff:
            raise ValueError("canned replies are for agents")
        if shared:
            self._admin("manage shared canned replies")
        row: dict[str, Any] = {"title": title.strip(), "body": body, "shortcut": shortcut or None}
        if reply_id is None:
            reply_id = _new_id()
            self._write("canned_replies", "insert", {"id": reply_id, "owner_id": None if shared else user.id, **row})
        else:
            self._write("canned_replies", "update", {"id": reply_id, **row})
        return reply_id

    def delete_canned_reply(self, reply_id: str) -> None:
        self._write("canned_replies", "delete", {"id": reply_id})

    # --- macros ------------------------------------------------------------------------------------------

    def save_macro(
        self,
        name: str,
        reply: str | None,
        actions: Mapping[str, Any],
        *,
        shared: bool = False,
        macro_id: str | None = None,
    ) -> str:
        """Create (no ``macro_id``) or change a macro — reply text and/or ticket changes (sync/macros.py);
        shared ones are the admins', personal ones their owner's (the server's RLS decides too)."""
        user = self._host.signed_in_user()
        if not user.is_staff:
            raise ValueError("macros are for agents")
        if shared:
            self._admin("manage shared macros")
        text = (reply or "").strip() or None
        if text is None and not actions:
            raise ValueError("a macro needs a reply or at least one change")
        row: dict[str, Any] = {"name": name.strip(), "reply": text, "actions": dict(actions)}
        if macro_id is None:
            macro_id = _new_id()
            self._write("macros", "insert", {"id": macro_id, "owner_id": None if shared else user.id, **row})
        else:
            self._write("macros", "update", {"id": macro_id, **row})
        return macro_id

    def delete_macro(self, macro_id: str) -> None:
        self._write("macros", "delete", {"id": macro_id})

    # --- saved views ---------------------------------------------------------------------------------------

    def save_view(self, name: str, f: InboxFilter, *, view_id: str | None = None, position: int = 0) -> str:
        row: dict[str, Any] = {"name": name.strip(), "filters": f.to_json(), "sort": f.sort, "position": position}
        if view_id is None:
            view_id = _new_id()
            self._write("saved_views", "insert", {"id": view_id, "owner_id": self._host.signed_in_user().id, **row})
        else:
            self._write("saved_views", "update", {"id": view_id, **row})
        return view_id

    def delete_view(self, view_id: str) -> None:
        self._write("saved_views", "delete", {"id": view_id})

    def rename_view(self, view_id: str, name: str) -> None:
        """A new name for one of the user's views (only the name changes; checked like a new view's)."""
        name = name.strip()
        views = self.saved_views()
        if not any(v.id == view_id for v in views):
            raise ValueError("there is no such view")
        if any(v.name.lower() == name.lower() and v.id != view_id for v in views):
            raise ValueError(f"you have a view named {name!r} already")
        # views sharing a position are listed by name: number them first, so the renamed one keeps its place
        self.apply([RowWrite("saved_views", "update", {"id": view_id, "name": name}), *_renumber(views)])

    def move_view(self, view_id: str, step: int) -> None:
        """Move a view ``step`` places up (negative) or down the sidebar: every view whose place changes gets
        its new ``position``, all in one local transaction (one outbox entry per moved view)."""
        views = self.saved_views()
        ids = [v.id for v in views]
        if view_id not in ids:
            raise ValueError("there is no such view")
        at = ids.index(view_id)
        to = min(max(at + step, 0), len(ids) - 1)
        ids.insert(to, ids.pop(at))
        by_id = {v.id: v for v in views}
        self.apply(_renumber([by_id[i] for i in ids]))

    # --- customer notes and mentions -------------------------------------------------------------------------

    def add_customer_note(self, customer_id: str, body: str) -> str:
        note_id = _new_id()
        self._write("customer_notes", "insert", {"id": note_id, "customer_id": customer_id, "body": body})
        return note_id

    def edit_customer_note(self, note_id: str, body: str) -> None:
        self._write("customer_notes", "update", {"id": note_id, "body": body})

    def delete_customer_note(self, note_id: str) -> None:
        self._write("customer_notes", "delete", {"id": note_id})

    def mark_mention_seen(self, mention_id: str) -> None:
        self._write("mentions", "update", {"id": mention_id, "seen_at": datetime.now(UTC).isoformat()})

    # --- snooze ------------------------------------------------------------------------------------------------

    def snooze(self, ticket_id: str, until: datetime | None) -> None:
        """Snooze until ``until`` (the server wakes it then, app open or not) or, with None, until the
        customer replies: the ticket becomes pending with that wake-up time."""
        if until is not None:
            if until.tzinfo is None:
                raise ValueError("a snooze time needs a time zone")
            if until <= datetime.now(UTC):
                raise ValueError("a snooze time must be in the future")
            if until > datetime.now(UTC) + SNOOZE_AHEAD:
                raise ValueError("a snooze time can be at most a year ahead")
        self.apply([self.ticket_step(ticket_id, status="pending"), self.snooze_step(ticket_id, until)])

    def unsnooze(self, ticket_id: str) -> None:
        self.apply([self.ticket_step(ticket_id, status="open"), self.snooze_step(ticket_id, None)])

    def snooze_step(self, ticket_id: str, until: datetime | None) -> SnoozeChange:
        """A ticket's wake-up time (None: none), sent after the ticket's status change in the same ``apply``: the
        server keeps it apart from the ticket (``ticket_snoozes``, staff only) and clears it when the status
        changes, so the status goes first."""
        if not self._host.signed_in_user().is_staff:
            raise ValueError("only agents snooze tickets")
        return SnoozeChange(ticket_id, canonical_ts(until))

    # --- SLA settings (admins) ---------------------------------------------------------------------------

    def set_sla_target(self, priority: str, first_response: int | None, next_response: int | None) -> None:
        self._admin("set SLA targets")
        self._write(
            "sla_targets",
            "update",
            {"priority": priority, "first_response_minutes": first_response, "next_response_minutes": next_response},
        )

    def set_sla_timezone(self, timezone: str) -> None:
        self._admin("set the SLA time zone")
        self._write("sla_settings", "update", {"id": True, "timezone": timezone})

    def add_business_hours(self, weekday: int, opens: str, closes: str) -> str:
        """A span of business time on a weekday (1 = Monday), ``HH:MM`` in the SLA time zone."""
        self._admin("set business hours")
        for span in self.sla_business_hours():
            if span.weekday == weekday and opens < span.closes and span.opens < closes:
                raise ValueError(f"these hours overlap {span.opens} to {span.closes} of the same day")
        hours_id = _new_id()
        row = {"id": hours_id, "weekday": weekday, "opens": opens, "closes": closes}
        self._write("sla_business_hours", "insert", row)
        return hours_id

    def remove_business_hours(self, hours_id: str) -> None:
        self._admin("set business hours")
        self._write("sla_business_hours", "delete", {"id": hours_id})

    def add_holiday(self, day: str, name: str = "") -> None:
        """A whole day off (``YYYY-MM-DD`` in the SLA time zone); an existing day is renamed."""
        self._admin("set holidays")
        known = any(h.day == day for h in self.sla_holidays())
        self._write("sla_holidays", "update" if known else "insert", {"day": day, "name": name.strip()})

    def remove_holiday(self, day: str) -> None:
        self._admin("set holidays")
        self._write("sla_holidays", "delete", {"day": day})

    def discard_failed(self, table: str, key: Mapping[str, Any]) -> None:
        """Forget a row the server refused to create (it exists only here)."""
        if not self._cache.workspace.discard_failed(table, key):
            raise ValueError("only a row the server refused can be discarded")
        self._host.local_write_done([events.WorkspaceChanged(frozenset({table}))])
