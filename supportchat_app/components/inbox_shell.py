"""The inbox's first rows as server-rendered HTML, painted before the framework starts (issue 14, `inbox_5k`).

Why: NiceGUI's page loads Vue, Quasar and its own script with ``defer`` (Tailwind: styles.py); the rows of the
list element (components/inbox_list.py) paint only when Vue mounts the app, after all of them ran — some
200 ms after the page's HTML arrived on a quiet machine. The page's ``body_html`` comes *before* those
scripts run, and only the CSS in the head blocks rendering, so Chromium paints plain HTML placed there as soon
as the HTML and the CSS are in (its first paint already happens between the end of parsing and the deferred
scripts). This module renders the same row dicts the list element gets (``inbox_list.row_data``) as that plain
HTML — an app shell, as server-side rendering does before hydration — using the list's own CSS classes, so it
looks like the list's rows; the Vue component removes it in its ``mounted`` hook, in the same task that puts
the real rows in the DOM, so no frame shows both.

A paint before the scripts is not guaranteed by itself: when the HTML parses quickly and the deferred scripts are
already in the cache, Chromium runs them right after parsing with no frame in between (seen in 3 of 20 loads at
load ~3, the rows then painted only at the mount). So a stylesheet link follows the rows (``PAINT_CSS``): it is
parser-inserted, so the parser — and with it the deferred scripts — waits for it, while what came before it may
render; the server answers it after ``PAINT_YIELD_S`` (a frame and a margin), so the main thread is idle at the
next vsync and the rows paint. In 20 loads at load ~3: the rows painted first in all of them, first-contentful-paint
~170 ms against ~250 ms without it, DOMContentLoaded unchanged within the noise (the scripts' own work dwarfs 20 ms).

Where: ``position: fixed`` at the list's place. The list's place depends on the sidebar above it (its saved
views), so the component stores its rectangle in ``localStorage`` each time it mounts and the shell's inline
script, right after the rows, reads it back (the shell stays hidden until it did, so no frame shows the rows
elsewhere); a first-ever load uses the server's estimate from the number of sidebar entries. The same script
sets Quasar's ``body--dark`` class when the app is dark (the saved setting, or the system's when none), which the
theme's dark colours hang on and which Quasar keeps when it starts: the shell is right in light and dark mode.

Rows below the window: the shell carries the list's first rows (20; the live list's first page, which the bench and
the tests compare), but a window shows some five of them. The rows carry the list's ``content-visibility: auto``, yet
Chromium lays out every such row in a document's first frame (its visibility is not known yet): 20 rows' ~500 layout
objects, the largest piece of the rows' frame (8-17 ms of the renderer's CPU at load 9-15, 9-14 ms in earlier traces).
The inline script marks the rows that start below the window (by ``ROW_PX_MIN``, a row's least height, from where the
list starts) ``sc-below``, ``content-visibility: hidden``: they keep their place (their intrinsic size) but are not
laid out or painted; a resize before the app mounts shows them all again. The window's height is asked with media
queries (``matchMedia``): reading ``innerHeight`` there made Chromium lay the page out inside the script, before the
rows' frame (3-5 ms of CPU in traced loads). Traced loads (load 9-15): 503 → 250 objects laid out in the rows' frame.

Safety: every text is user data (subjects, customer names, previews, tag names): each is escaped with
``html.escape`` (quotes too), a tag colour is used only when it is ``#rgb``/``#rrggbb``, class names come from
closed sets. The shell rows are not buttons (``data-testid="shell-row"``, no handlers): a click before the
app mounts does nothing, and tests that look for ``ticket-row`` only ever find the live list's rows.

The SLA badge's text carries ``elementtiming="sla:<ticket id>"`` (as in the component): Chromium's Element
Timing then says when each row's badge was first painted, whoever drew it — what the `inbox_5k` bench reads.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from html import escape
from typing import Any

from nicegui import app, ui
from starlette.responses import Response

from supportchat_app import config

SHELL_ID = "sc-inbox-shell"
PAINT_CSS = "/_sc/shell-paint.css"  # answered after PAINT_YIELD_S: the shell paints while the parser waits for it
PAINT_YIELD_S = 0.02
STORAGE_KEY = "sc-inbox-rect"  # the list's last rectangle (top, left, width), stored by inbox_list.js
# the first-ever estimate of the list's top (measured in Chromium): an agent's sidebar is its fixed part (list
# toggle, filters, count row) plus a line per entry (Inbox, Snoozed, ..., saved views); a customer's is a title
# and the count row
HEADER_PX = 58  # the header's height (theme.frame; the workspace's row below it is 100vh - 58px)
STAFF_TOP_PX = 229
ENTRY_PX = 30
CUSTOMER_TOP_PX = 130
# a row's least height with its margin (inbox_list.CSS: three lines and padding 79 px, 8 px of margin): the shell's
# rows that start below the window by this measure are certainly out of it
ROW_PX_MIN = 72
HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")

CSS = f"""
#{SHELL_ID} {{ position: fixed; inset: 0; z-index: 1; pointer-events: none; overflow: hidden; visibility: hidden; }}
#{SHELL_ID}.sc-placed {{ visibility: visible; }}
#{SHELL_ID} .sc-shell-head {{ height: {HEADER_PX}px; background: var(--sc-panel);
  border-bottom: 1px solid var(--sc-line); }}
#{SHELL_ID} .sc-shell-pane {{ position: absolute; top: {HEADER_PX}px; bottom: 0; left: var(--sc-shell-left, 0px);
  width: calc(var(--sc-shell-width, 369px) + 1px); background: var(--sc-panel);
  border-right: 1px solid var(--sc-line); }}
#{SHELL_ID} .sc-inbox-list {{ position: absolute; top: calc(var(--sc-shell-top) - {HEADER_PX}px); left: 0;
  width: var(--sc-shell-width, 369px); bottom: 0; overflow: hidden; }}
#{SHELL_ID} .sc-below {{ content-visibility: hidden; }}
#{SHELL_ID} .bg-primary {{ background: var(--sc-own) !important; }}
#{SHELL_ID} .text-primary {{ color: var(--sc-own) !important; }}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _sla(s: dict[str, Any], ticket_id: str) -> str:
    icon = "pause" if s["paused"] else "schedule"
    paused = " sc-sla-paused" if s["paused"] else ""
    return (
        f'<span class="sc-sla sc-sla-{_e(s["state"])}{paused}" data-state="{_e(s["state"])}" title="{_e(s["tip"])}">'
        f'<i class="q-icon notranslate material-icons" aria-hidden="true" style="font-size: 12px">{icon}</i>'
        f'<span class="sc-sla-text" elementtiming="sla:{_e(ticket_id)}">{_e(s["text"])}</span></span>'
    )


def _avatar(a: dict[str, Any]) -> str:
    if a.get("url"):
        inner = f'<div class="sc-row-img"><img src="{_e(a["url"])}" alt="" /></div>'
    elif a.get("icon"):
        inner = f'<i class="q-icon notranslate material-icons" aria-hidden="true">{_e(a["icon"])}</i>'
    else:
        inner = f'<span class="sc-initials">{_e(a["initials"])}</span>'
    return f'<div class="sc-row-avatar bg-{_e(a["color"])}" title="{_e(a["name"])}">{inner}</div>'


def _tags(r: dict[str, Any]) -> str:
    if not r["tags"]:
        return ""
    chips = []
    for t in r["tags"]:
        color = t["color"] if HEX_COLOR.fullmatch(str(t["color"])) else ""
        style = f' style="background: {color}; color: {_e(t["text"])}"' if color else ""
        failed = " sc-tag-failed" if t["failed"] else ""
        chips.append(f'<span class="sc-tag{failed}"{style}>{_e(t["name"])}</span>')
    if r["more_tags"]:
        chips.append(f'<span class="sc-tags-more">+{int(r["more_tags"])}</span>')
    return f'<div class="sc-row-tags">{"".join(chips)}</div>'


def _viewers(v: dict[str, Any] | None) -> str:
    if not v:
        return ""
    shown = "".join(f'<span class="sc-viewer bg-{_e(s["color"])}">{_e(s["initials"])}</span>' for s in v["shown"])
    more = f'<span class="sc-viewers-more">+{int(v["more"])}</span>' if v["more"] else ""
    return (
        f'<span class="sc-viewers" title="{_e(v["tip"])}"><i class="q-icon notranslate material-icons"'
        f' aria-hidden="true" style="font-size: 14px">visibility</i>{shown}{more}</span>'
    )


def row_html(r: dict[str, Any], *, selected: str = "") -> str:
    """One row as inbox_list.js draws it (same classes, same texts), every text escaped."""
    unread = int(r["unread"])
    line3 = f'<span class="sc-chip sc-outline text-{_e(r["status_color"])}">{_e(r["status"])}</span>'
    if r["priority"]:
        line3 += f'<span class="sc-chip bg-{_e(r["priority_color"])}">{_e(r["priority"])}</span>'
    if r["assignee"]:
        line3 += f'<span class="sc-row-assignee">→ {_e(r["assignee"])}</span>'
    if r["sla"]:
        line3 += _sla(r["sla"], r["id"])
    line3 += _viewers(r["viewers"])
    chosen = " sc-selected" if r["id"] == selected else ""
    return (
        f'<div class="sc-ticket-row sc-row{chosen}" data-testid="shell-row" data-ticket-id="{_e(r["id"])}">'
        f"{_avatar(r['avatar'])}"
        '<div class="sc-row-main">'
        f'<div class="sc-row-line"><span class="sc-row-subject{" sc-unread" if unread else ""}">{_e(r["subject"])}'
        f'</span><span class="sc-row-age">{_e(r["ago"])}</span></div>'
        f'<div class="sc-row-line"><span class="sc-row-preview">{_e(r["who"])}{_e(r["preview"])}</span>'
        + (f'<span class="sc-chip sc-unread-count bg-primary">{unread}</span>' if unread else "")
        + f'</div><div class="sc-row-line">{line3}</div>{_tags(r)}</div></div>'
    )


def saved_dark() -> bool | None:
    """The saved dark-mode setting (None: follow the system)."""
    saved = config.load_settings(config.data_dir()).get("dark")
    return saved if isinstance(saved, bool) else None


def shell_html(
    rows: Sequence[dict[str, Any]], *, entries: int | None, selected: str = "", dark: bool | None = None
) -> str:
    """The shell: the rows, then its inline script (place and dark mode; the shell is hidden until it ran). The
    script follows the rows so that nothing stops the parser before them (a script pauses it and it may yield to a
    frame right after: the rows then came a frame later). ``entries``: the agent's sidebar entries, None for a
    customer's page."""
    estimate = CUSTOMER_TOP_PX if entries is None else STAFF_TOP_PX + ENTRY_PX * entries
    script = (
        "(()=>{const s=document.documentElement.style;let r=null;"
        f"try{{r=JSON.parse(localStorage.getItem({json.dumps(STORAGE_KEY)})||'null')}}catch(e){{}}"
        # a number or the estimate: a string from a tampered store would make every media query below invalid
        f"const t=Number(r&&r.top);const top=t>0&&t<1e5?t:{estimate};s.setProperty('--sc-shell-top',top+'px');"
        f"const rows=document.querySelectorAll('#{SHELL_ID} .sc-row');"
        # a media query, not innerHeight: reading that made Chromium lay the page out here, before the rows' frame
        f"let i=0;while(i<rows.length&&matchMedia(`(min-height: ${{top+(i-1)*{ROW_PX_MIN}}}px)`).matches)i++;"
        "for(;i<rows.length;i++)rows[i].classList.add('sc-below');"
        "addEventListener('resize',()=>rows.forEach((e)=>e.classList.remove('sc-below')),{once:true});"
        "if(r){s.setProperty('--sc-shell-left',r.left+'px');s.setProperty('--sc-shell-width',r.width+'px');}"
        f"const d={json.dumps(dark)};"
        "if(d===true||(d===null&&matchMedia('(prefers-color-scheme: dark)').matches))"
        "document.body.classList.add('body--dark');"
        f"document.getElementById({json.dumps(SHELL_ID)}).classList.add('sc-placed');}})();"
    )
    body = "".join(row_html(r, selected=selected) for r in rows)
    return (
        f'<div id="{SHELL_ID}" aria-hidden="true"><div class="sc-shell-head"></div>'
        f'<div class="sc-shell-pane"><div class="sc-inbox-list">{body}</div></div></div>'
        f"<script>{script}</script>"
        f'<link rel="stylesheet" href="{PAINT_CSS}">'
    )


def create() -> None:
    """Register the route of ``PAINT_CSS`` (once per process)."""
    if any(getattr(route, "path", None) == PAINT_CSS for route in app.routes):
        return

    @app.get(PAINT_CSS, include_in_schema=False)
    async def _paint_css() -> Response:
        await asyncio.sleep(PAINT_YIELD_S)
        return Response(
            "/* the inbox shell painted while the page waited for this */",
            media_type="text/css",
            headers={"Cache-Control": "no-store"},
        )


def add(rows: Sequence[dict[str, Any]], *, entries: int | None, selected: str = "") -> None:
    """Put the shell of these rows into this page's first HTML (before its framework scripts run)."""
    ui.add_css(CSS)
    ui.add_body_html(shell_html(rows, entries=entries, selected=selected, dark=saved_dark()))
