"""The inbox list as one element (issue 14, bench `inbox_5k`): the rows travel as plain data — a list of small
dicts in one prop — and a Vue component of our own (inbox_list.js) draws them as plain HTML.

Why our own component: a row built from NiceGUI elements was some 24 elements (Quasar item, sections, labels,
badges, avatar, tooltip), and building 20 of them cost 120-200 ms of server CPU and 300-500 ms of Chromium
drawing Quasar components on the shared machine; a filter switch rebuilt them all. Here a switch is one prop
update of 20-50 dicts, the SLA badges count down in the browser from their due times (no server redraw per
tick), rows off screen skip layout and paint, and the next rows come as data when the list is scrolled. Since
the element is built with the page, the first rows are in the page's first HTML and paint before the socket
connects.

``row_data`` is what a row shows (subject, customer, preview, age (counted on in the browser), unread, status,
priority, assignee, until when it is snoozed, the SLA badge's due time and state, tags, viewers, the avatar's picture
or initials, the bulk checkbox); the events coming back are ``open`` (a click, Enter or Space on a row), ``check``
(its bulk checkbox, or x) and ``more``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.business_time import Calendar
from supportchat_app.components import sla_badge
from supportchat_app.components.tags import text_color
from supportchat_app.pictures import picture_url
from sync.models import Ticket, mentions_shown
from sync.workspace_rows import Tag, TicketSla

PRIORITY_COLORS = {"urgent": "negative", "high": "deep-orange-6", "normal": "grey-6", "low": "blue-grey-4"}
STATUS_COLORS = {"open": "primary", "pending": "amber-8", "resolved": "positive", "closed": "grey-6"}
TAG_LIMIT = 3  # chips on a row; the rest as "+n" (the list is narrow)
VIEWER_LIMIT = 3

CSS = """
.sc-inbox-list { overflow-y: auto; padding: 0 8px 8px; display: flex; flex-direction: column; }
.sc-row { display: flex; align-items: flex-start; gap: 12px; padding: 8px 12px; margin: 4px 0; border-radius: 8px;
          outline: none; content-visibility: auto; contain-intrinsic-size: auto 78px; flex: none; }
.sc-row:focus-visible { box-shadow: inset 0 0 0 2px var(--sc-own); }
.sc-row-check { display: flex; align-items: center; align-self: center; cursor: pointer; }
.sc-row-check input { width: 16px; height: 16px; accent-color: var(--sc-own); cursor: pointer; }
.sc-row-avatar { width: 32px; height: 32px; border-radius: 50%; flex: none; display: flex; align-items: center;
                 justify-content: center; color: #fff; font-size: 13px; overflow: hidden; margin-top: 2px; }
.sc-row-avatar.bg-blue-grey-2 { color: #37474f; }
.sc-row-avatar .q-icon { font-size: 20px; }
.sc-row-img, .sc-row-img img { width: 100%; height: 100%; object-fit: cover; border-radius: 50%; display: block; }
.sc-row-main { min-width: 0; flex: 1; display: flex; flex-direction: column; gap: 2px; }
.sc-row-line { display: flex; align-items: center; gap: 4px; min-width: 0; white-space: nowrap; }
.sc-row-subject { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; font-size: 14px; font-weight: 500; }
.sc-row-subject.sc-unread { font-weight: 700; }
.sc-row-age { font-size: 12px; opacity: 0.6; }
.sc-row-preview { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; font-size: 12px; opacity: 0.7; }
.sc-row-assignee { font-size: 12px; opacity: 0.6; overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.sc-row-snoozed { font-size: 12px; opacity: 0.7; }
.sc-row-snoozed > span { overflow: hidden; text-overflow: ellipsis; }
.sc-chip { border-radius: 4px; padding: 1px 6px; font-size: 12px; line-height: 16px; color: #fff; flex: none; }
.sc-chip.sc-outline { background: transparent; border: 1px solid currentColor; }
.sc-unread-count { border-radius: 9999px; padding: 1px 7px; font-weight: 600; }
.sc-viewers { display: inline-flex; align-items: center; flex: none; padding-right: 4px; }
.sc-viewers > .q-icon { opacity: 0.6; margin-right: 4px; }
.sc-viewer { width: 18px; height: 18px; border-radius: 50%; color: #fff; font-size: 9px; font-weight: 600;
             display: inline-flex; align-items: center; justify-content: center; margin-left: -3px;
             box-shadow: 0 0 0 1.5px var(--sc-panel); }
.sc-viewers-more, .sc-tags-more { font-size: 11px; opacity: 0.7; margin-left: 4px; }
.sc-row-tags { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; padding-top: 2px; }
.sc-tag { border-radius: 9999px; padding: 0 8px; font-size: 11px; line-height: 18px; white-space: nowrap; }
.sc-tag-failed { opacity: 0.5; text-decoration: line-through; }
.sc-inbox-empty { display: flex; flex-direction: column; align-items: center; gap: 4px; padding: 40px 0;
                  opacity: 0.6; font-size: 14px; }
.sc-inbox-more { height: 1px; flex: none; }
"""


def _avatar(name: str | None, key: str | None, picture: Path | None) -> dict[str, str]:
    return {
        "name": name or "Unknown",
        "color": fmt.avatar_color(key or name),
        "initials": fmt.initials(name),
        "url": picture_url(picture),
    }


def _sla(sla: TicketSla | None, now: datetime, calendar: Calendar | None) -> dict[str, Any] | None:
    badge = sla_badge.describe(sla, now, calendar=calendar)
    if sla is None or badge is None:
        return None
    return {
        "due": str(sla.due_at),
        "start": str(sla.started_at or ""),
        "near": sla_badge.NEAR_FRACTION,
        "state": badge.state,  # at ``now``; the browser follows the clock from here
        "text": sla_badge.label_of(badge.state, badge.left),
        "paused": badge.paused,
        "flip": badge.flip,
        "tip": badge.tip,
    }


def snoozed(ticket: Ticket, now: datetime) -> str:
    """The row's "Snoozed until <time>" while the ticket sleeps (pending, its wake-up time ahead), else ""."""
    until = fmt.as_datetime(ticket.snoozed_until) if ticket.status == "pending" else None
    return f"Snoozed until {fmt.wake_time(until, now)}" if until is not None and until > now else ""


def age_of(ticket: Ticket) -> datetime | None:
    """When the row's last activity was: the newest shown message (the agent's own queued reply too: the ticket's
    ``last_message_at`` moves only once the server has it), else the ticket's own times."""
    times = [t for t in (ticket.preview_at, ticket.last_message_at) if t] or [ticket.updated_at]
    moments = [m for m in map(fmt.as_datetime, times) if m is not None]
    return max(moments) if moments else None


def row_data(
    ticket: Ticket,
    *,
    staff: bool,
    now: datetime,
    tags: Sequence[Tag] = (),
    sla: TicketSla | None = None,
    calendar: Calendar | None = None,
    viewers: Sequence[str] = (),
    picture: Path | None = None,
    checked: bool = False,
) -> dict[str, Any]:
    """What one row shows, as the component takes it."""
    customer = ticket.customer_name or "Customer"
    status, priority = str(ticket.status), str(ticket.priority)
    at = age_of(ticket)
    if staff:
        avatar = _avatar(customer, str(ticket.customer_id), picture)
    elif ticket.assignee_name:
        avatar = _avatar(ticket.assignee_name, str(ticket.assignee_id), picture)
    else:
        avatar = {"name": "Support", "color": "blue-grey-2", "icon": "support_agent", "initials": "", "url": ""}
    return {
        "id": str(ticket.id),
        "subject": str(ticket.subject),
        "who": f"{customer} · " if staff else "",
        "preview": mentions_shown(ticket.last_message_preview or ""),
        # the age as drawn first (the server-rendered shell); the list counts it on from "at" in the browser
        "ago": fmt.ago(at, now),
        "at": at.isoformat() if at else "",
        "snoozed": snoozed(ticket, now) if staff else "",
        "unread": int(ticket.unread_count or 0),
        "status": status,
        "status_color": STATUS_COLORS.get(status, "grey"),
        "priority": "" if priority == "normal" else priority,
        "priority_color": PRIORITY_COLORS.get(priority, "grey"),
        "assignee": (ticket.assignee_name or "") if staff else "",
        "avatar": avatar,
        "sla": _sla(sla, now, calendar),
        "viewers": {
            "shown": [{"initials": fmt.initials(n), "color": fmt.avatar_color(n)} for n in viewers[:VIEWER_LIMIT]],
            "more": max(0, len(viewers) - VIEWER_LIMIT),
            "names": list(viewers),
            "tip": ", ".join(viewers) + (" is viewing" if len(viewers) == 1 else " are viewing"),
        }
        if viewers
        else None,
        "tags": [
            {
                "name": t.name,
                "color": t.color,
                "text": text_color(t.color),
                "failed": f"Not saved: {t.error}" if t.local_state == "failed" else "",
            }
            for t in tags[:TAG_LIMIT]
        ],
        "more_tags": max(0, len(tags) - TAG_LIMIT),
        "checked": checked,
    }


class InboxList(ui.element, component="inbox_list.js"):
    """The rows of the inbox; ``show`` sends what changed (one prop update)."""

    def __init__(
        self,
        *,
        on_open: Callable[[str], None],
        on_check: Callable[[str], None],
        on_more: Callable[[], object],  # may be a coroutine function: NiceGUI awaits what a handler returns
        empty: str,
    ) -> None:
        super().__init__()
        self._props.update(rows=(), selected="", selecting=False, more=False, empty=empty)
        # the browser names a row by its id: only a row this list shows is opened or checked (a page could send
        # any string; the server's RLS decides in the end, but nothing here acts on a ticket the list did not offer)
        self.on("open", lambda e: on_open(str(e.args)) if self._shows(e.args) else None)
        self.on("check", lambda e: on_check(str(e.args)) if self._shows(e.args) else None)
        self.on("more", lambda _: on_more())
        self.mark("inbox-list")

    def show(self, rows: list[dict[str, Any]], *, selected: str, selecting: bool, more: bool) -> None:
        """Show these rows (a no-op when nothing changed). A tuple, not a list: NiceGUI would copy a list of
        dicts into observable collections on every update (and the rows' data would no longer be shared)."""
        wanted = {"rows": tuple(rows), "selected": selected, "selecting": selecting, "more": more}
        if all(self._props.get(k) == v for k, v in wanted.items()):
            return
        self._props.update(wanted)
        self.update()

    def _shows(self, ticket_id: object) -> bool:
        return isinstance(ticket_id, str) and self.row(ticket_id) is not None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self._props["rows"])

    def row(self, ticket_id: str) -> dict[str, Any] | None:
        return next((r for r in self._props["rows"] if r["id"] == ticket_id), None)

    def _displayed_contents(self, *, only_visible: bool) -> list[Any]:
        """The rows' texts, for ``user.should_see`` in the simulated-user tests (the rows are no elements)."""
        del only_visible
        out: list[Any] = []
        for r in self._props["rows"]:
            out += [r["subject"], f"{r['who']}{r['preview']}", r["status"], r["priority"], r["assignee"]]
            out += [t["name"] for t in r["tags"]]
        if not self._props["rows"]:
            out.append(self._props["empty"])
        return out


if InboxList.component is None:  # NiceGUI would draw a bare <div>: say what is missing instead
    raise RuntimeError("inbox_list.js must lie beside inbox_list.py (the frozen build's datas in build.spec)")


def install() -> None:
    """The list's style (once per page)."""
    ui.add_css(CSS)
