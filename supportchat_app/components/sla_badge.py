"""SLA badges (issue 14): the running deadline of a ticket (first response, then next response) counting
down in the inbox rows and the ticket header — neutral while there is time, amber when less than a
quarter of the target is left, red once breached. The due times are the server's (``ticket_sla``), so
every agent sees the same; the page counts down in the browser (one timer for every badge on the page,
no server round trip per second); the server redraws with fresh due times when they change.

Business hours and holidays show on the badge: the due time already counts only business time (the
server's), and outside business hours the badge is "paused" (a pause icon, dimmed, dashed) with the instant
the clock runs again in its tooltip; the page's timer flips that state at the next opening or closing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.business_time import Calendar
from sync.workspace import Workspace
from sync.workspace_rows import TicketSla

SlaState = Literal["ok", "near", "breached"]
NEAR_FRACTION = 0.25

# one interval per page: every badge's text and colour follow the clock
COUNTDOWN_JS = """
if (!window.scSlaTimer) {
  const span = (s) => { s = Math.abs(Math.round(s)); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
    m = Math.floor(s % 3600 / 60); return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m` : '<1m'; };
  const tick = () => document.querySelectorAll('.sc-sla[data-due]').forEach((el) => {
    const due = Date.parse(el.dataset.due), start = Date.parse(el.dataset.start || '');
    const left = (due - Date.now()) / 1000, total = start ? (due - start) / 1000 : 0;
    const state = left <= 0 ? 'breached' : (total > 0 && left < total * NEAR) ? 'near' : 'ok';
    // written only when it changes: every write is a DOM change the page reacts to (style, layout, observers)
    if (el.dataset.state !== state) {
      el.classList.remove('sc-sla-ok', 'sc-sla-near', 'sc-sla-breached'); el.classList.add('sc-sla-' + state);
      el.dataset.state = state;
    }
    if (el.dataset.flip && Date.parse(el.dataset.flip) <= Date.now()) {
      el.classList.toggle('sc-sla-paused'); delete el.dataset.flip;
      const icon = el.querySelector('.q-icon');
      if (icon) icon.textContent = el.classList.contains('sc-sla-paused') ? 'pause' : 'schedule';
    }
    const text = el.querySelector('.sc-sla-text');
    const shown = left <= 0 ? `overdue ${span(left)}` : span(left);
    if (text && text.textContent !== shown) text.textContent = shown;
  });
  window.scSlaTimer = setInterval(tick, 1000); tick();
}
""".replace("NEAR", str(NEAR_FRACTION))

CSS = """
.sc-sla { border-radius: 9999px; padding: 0 7px; font-size: 11px; line-height: 18px; white-space: nowrap;
          display: inline-flex; align-items: center; gap: 3px; font-variant-numeric: tabular-nums; }
.sc-sla-ok { background: #e2e8f0; color: #334155; }
.sc-sla-near { background: #fde68a; color: #78350f; }
.sc-sla-breached { background: #dc2626; color: #ffffff; }
.body--dark .sc-sla-ok { background: #334155; color: #e2e8f0; }
.body--dark .sc-sla-near { background: #b45309; color: #fffbeb; }
.body--dark .sc-sla-breached { background: #ef4444; color: #ffffff; }
.sc-sla-paused { opacity: 0.75; outline: 1px dashed currentColor; outline-offset: -1px; }
"""


def _span(seconds: float) -> str:
    s = abs(round(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    return f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m" if m else "<1m"


def state_of(sla: TicketSla, now: datetime) -> tuple[SlaState, float] | None:
    """(state, seconds left; negative once breached) of the running deadline, or None without one."""
    due = fmt.as_datetime(sla.due_at)
    if due is None:
        return None
    left = (due - now).total_seconds()
    if left <= 0:
        return "breached", left
    start = fmt.as_datetime(sla.started_at)
    total = (due - start).total_seconds() if start is not None else 0.0
    return ("near" if total > 0 and left < total * NEAR_FRACTION else "ok"), left


def label_of(state: SlaState, left: float) -> str:
    return f"overdue {_span(left)}" if state == "breached" else _span(left)


@dataclass(frozen=True)
class Badge:
    """What a badge shows at ``now``: the state and time left, which deadline, whether the business clock is
    paused (and when that flips), and the tooltip."""

    state: SlaState
    left: float
    what: str
    paused: bool
    flip: str  # ISO instant the clock starts or stops next ("" when never)
    tip: str


def describe(sla: TicketSla | None, now: datetime | None = None, *, calendar: Calendar | None = None) -> Badge | None:
    """The badge of a ticket's running SLA deadline (None when there is none); with the business ``calendar``
    (None: round the clock) whether the clock runs now."""
    if sla is None:
        return None
    now = now or datetime.now(UTC)
    found = state_of(sla, now)
    if found is None:
        return None
    state, left = found
    what = "First response" if sla.first_response_at is None else "Next response"
    clock = calendar.state(now) if calendar is not None else None
    paused = clock is not None and not clock.running
    flip = clock.changes_at.isoformat() if clock is not None and clock.changes_at is not None else ""
    tip = f"{what} due {fmt.clock(sla.due_at)}"
    if calendar is not None:
        due = fmt.as_datetime(sla.due_at)
        tip = f"{what} due {calendar.describe(due)}" if due is not None else tip
        if clock is not None and clock.changes_at is not None:
            when = calendar.describe(clock.changes_at)
            tip += f" · outside business hours, runs again {when}" if paused else f" · business hours until {when}"
        elif paused:
            tip += " · outside business hours"
    return Badge(state, left, what, paused, flip, tip)


def sla_badge(
    sla: TicketSla | None, now: datetime | None = None, *, long: bool = False, calendar: Calendar | None = None
) -> None:
    """The badge of a ticket's running SLA deadline (nothing when there is none), as NiceGUI elements (the
    ticket header; the inbox list draws its badges itself, components/inbox_list.js)."""
    badge = describe(sla, now, calendar=calendar)
    if sla is None or badge is None:
        return
    state, paused, flip = badge.state, badge.paused, badge.flip
    with (
        ui.element("span")
        .classes(f"sc-sla sc-sla-{state}" + (" sc-sla-paused" if paused else ""))
        .props(
            f'data-due="{sla.due_at}" data-start="{sla.started_at or ""}" data-state="{state}" data-testid="sla"'
            + (f' data-flip="{flip}"' if flip else "")
        )
        .mark("sla", f"sla-{state}", *(["sla-paused"] if paused else [])) as element
    ):
        ui.icon("pause" if paused else "schedule", size="12px")
        if long:
            ui.label(f"{badge.what}:").classes("sc-sla-what")
        ui.label(label_of(state, badge.left)).classes("sc-sla-text")
    element.tooltip(badge.tip)


def calendar_of(workspace: Workspace) -> Calendar | None:
    """The cached business calendar (None: the clock always runs)."""
    return Calendar.of(workspace.sla_timezone(), workspace.sla_business_hours(), workspace.sla_holidays())


def install() -> None:
    """The badges' style and the page's one countdown timer (call once per page)."""
    ui.add_css(CSS)
    ui.add_body_html(f"<script>{COUNTDOWN_JS}</script>")
