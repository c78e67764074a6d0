"""The inbox rows for the simulated-user tests (no tests here). The rows are data drawn by one element
(supportchat_app/components/inbox_list.py), not NiceGUI elements: these read what each row shows and send
the events a click or a checkbox in the browser sends."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from nicegui.testing import User

from supportchat_app.components.inbox_list import InboxList


def inbox_list(user: User) -> InboxList:
    with user:
        return next(e for e in ui.context.client.elements.values() if isinstance(e, InboxList))


def rows_of(user: User) -> dict[str, dict[str, Any]]:
    """What the inbox shows, row by row (ticket id -> the row's data), in the list's order."""
    return {r["id"]: r for r in inbox_list(user).rows}


def row_of(user: User, ticket_id: str) -> dict[str, Any]:
    """One row's data ({} while the list does not show the ticket)."""
    return inbox_list(user).row(ticket_id) or {}


def sla_state(user: User, ticket_id: str) -> str | None:
    """The state of the row's SLA badge as the server drew it ("ok", "near", "breached"; None: no badge)."""
    sla = row_of(user, ticket_id).get("sla")
    return sla["state"] if sla else None


def open_row(user: User, ticket_id: str) -> None:
    """A click on the row (what the component emits for a click, Enter or Space)."""
    user.find(marker="inbox-list").trigger("open", ticket_id)


def check_row(user: User, ticket_id: str) -> None:
    """A click on the row's bulk checkbox."""
    user.find(marker="inbox-list").trigger("check", ticket_id)
