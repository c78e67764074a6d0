"""Macros and bulk actions (issue 14, item 7): what applying a macro, or one change to many tickets, queues.

A macro (``public.macros``, migration 20261129000530) is optional reply text plus ticket changes —
``{"status", "priority", "assignee" ("me" | "none" | uuid), "add_tags": [uuid], "remove_tags": [uuid]}``.
``macro_steps`` turns it into workspace steps for one ticket (reply first, then the ticket change, then
tags), and the caller hands the steps of every selected ticket to ``Workspace.apply`` in ONE call: one
local transaction, all or nothing, and each step goes out exactly once in effect (a reply is a message
with a client id, the ticket change a compare-and-set — "assign to me" of an unassigned ticket through
the server's take — and tags an upsert on (ticket, tag)). Tags no longer defined are skipped, as is a
tag the ticket already has or lacks, so applying a macro twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sync.workspace import Workspace
from sync.workspace_rows import Macro, RowWrite, Step

BulkField = Literal["status", "priority", "assignee", "add_tag", "remove_tag"]
# a macro's reply text made ready for one ticket: (text, ticket id) -> text (the app fills its {{variables}})
Render = Callable[[str, str], str]


@dataclass(frozen=True)
class BulkChange:
    """One change for many tickets: a field and its value (assignee: "me", "none" or a user id)."""

    field: BulkField
    value: str


def _assignee(value: str, me: str) -> str | None:
    if value == "me":
        return me
    if value == "none":
        return None
    return value


def ticket_changes(actions: Mapping[str, Any], me: str) -> dict[str, Any]:
    """The ticket fields a macro's actions set (assignee resolved against the user applying it)."""
    changes: dict[str, Any] = {}
    for key in ("status", "priority"):
        if key in actions:
            changes[key] = actions[key]
    if "assignee" in actions:
        changes["assignee_id"] = _assignee(str(actions["assignee"]), me)
    return changes


def macro_steps(
    workspace: Workspace,
    macro: Macro,
    ticket_id: str,
    me: str,
    *,
    has_tags: Iterable[str] = (),
    live_tags: Iterable[str] | None = None,
    render: Render | None = None,
) -> list[Step]:
    """The steps one macro queues for one ticket. ``has_tags`` are the tag ids the ticket has now;
    ``live_tags`` the tag ids still defined (None: do not check); ``render`` fills the reply's variables for
    this ticket (None: sent as written)."""
    steps: list[Step] = []
    if macro.reply:
        steps.append(workspace.reply_step(ticket_id, render(macro.reply, ticket_id) if render else macro.reply))
    changes = ticket_changes(macro.actions, me)
    if changes:
        steps.append(workspace.ticket_step(ticket_id, **changes))
    steps.extend(_tag_steps(macro.actions, ticket_id, set(has_tags), None if live_tags is None else set(live_tags)))
    return steps


def _tag_steps(actions: Mapping[str, Any], ticket_id: str, has: set[str], live: set[str] | None) -> list[Step]:
    steps: list[Step] = []
    for tag_id in dict.fromkeys(str(t) for t in actions.get("add_tags") or ()):
        if tag_id not in has and (live is None or tag_id in live):
            steps.append(RowWrite("ticket_tags", "insert", {"ticket_id": ticket_id, "tag_id": tag_id}))
    for tag_id in dict.fromkeys(str(t) for t in actions.get("remove_tags") or ()):
        if tag_id in has:
            steps.append(RowWrite("ticket_tags", "delete", {"ticket_id": ticket_id, "tag_id": tag_id}))
    return steps


def bulk_steps(
    workspace: Workspace, change: BulkChange, ticket_ids: Sequence[str], me: str, tags_of: Mapping[str, set[str]]
) -> list[Step]:
    """The steps of one change applied to every selected ticket (tickets it would not change are skipped)."""
    steps: list[Step] = []
    for ticket_id in ticket_ids:
        has = tags_of.get(ticket_id, set())
        if change.field == "add_tag":
            steps.extend(_tag_steps({"add_tags": [change.value]}, ticket_id, has, None))
        elif change.field == "remove_tag":
            steps.extend(_tag_steps({"remove_tags": [change.value]}, ticket_id, has, None))
        elif change.field == "assignee":
            steps.append(workspace.ticket_step(ticket_id, assignee_id=_assignee(change.value, me)))
        else:
            steps.append(workspace.ticket_step(ticket_id, **{change.field: change.value}))
    return steps


def apply_macro(
    workspace: Workspace, macro: Macro, ticket_ids: Sequence[str], me: str, render: Render | None = None
) -> set[str]:
    """Apply a macro to tickets in one local transaction; returns the tickets touched. ``render`` fills the
    reply's variables per ticket (see ``macro_steps``)."""
    tags = workspace.tags_of(list(ticket_ids))
    live = {t.id for t in workspace.tags()}
    steps: list[Step] = []
    for ticket_id in ticket_ids:
        has = {t.id for t in tags.get(ticket_id, [])}
        steps.extend(macro_steps(workspace, macro, ticket_id, me, has_tags=has, live_tags=live, render=render))
    return workspace.apply(steps)


def apply_bulk(workspace: Workspace, change: BulkChange, ticket_ids: Sequence[str], me: str) -> set[str]:
    """Apply one change to tickets in one local transaction; returns the tickets touched."""
    tags = {tid: {t.id for t in ts} for tid, ts in workspace.tags_of(list(ticket_ids)).items()}
    return workspace.apply(bulk_steps(workspace, change, ticket_ids, me, tags))
