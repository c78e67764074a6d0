"""The workspace page sent in two parts: the inbox's first rows before the page is built, the page after (issue 14,
bench `inbox_5k`: first paint).

Why: NiceGUI answers a page only once its function has built every element (the workspace: header, sidebar,
filters, dialogs, the list — 60-70 ms of server time on a quiet machine, hundreds when it is busy), so the first
byte, and with it the server-rendered rows of components/inbox_shell.py, waited for all of it. Here the page's
response is streamed: its first chunk is NiceGUI's own document start (doctype, head, the title; rendered by NiceGUI
for an empty page) up to its stylesheets, the styles the rows use (components/shell_base.py: the few framework
rules they need, scoped to the shell) and the shell with the first rows — queried from the cache in a few ms, the
same rows the list gets (``inbox_pane.first_rows``, which the pane then reuses instead of querying again). The
browser parses and paints those while the server builds the page; the second chunk is NiceGUI's stylesheets (its
``<style>`` of ``@import``s: Quasar, fonts, its own) and the page NiceGUI rendered, from its import map on (what
precedes it was sent already). Those stylesheets were in the first chunk until the eighth pass: render-blocking,
some 4,000 rules parsed, indexed and matched before the rows' first frame, and the shell's placing script waited
for them (bench inbox_5k, same-minute A/B at load 12-19: median first paint 132-238 against 208-340 ms).

How the HTML parser takes the second part: it arrives after ``<body>`` was opened, so the head's remaining
elements (NiceGUI's stylesheets, the import map, NiceGUI's inline scripts, the page's ``addStyle`` calls, module
preloads, the Tailwind link) are inserted into the body, where each does the same: scripts run in order, the
import map precedes every module script, styles apply wherever they are (the framework's elements are drawn only
once its scripts ran, after them); the repeated ``</head>`` and ``<body>`` tags are ignored. The title is the
first ``<title>`` element, so a page title other than the empty page's is set by a one-line script
(JSON-escaped). If NiceGUI's document start ever differed from the empty page's in anything else, that start's
elements are repeated in the body (harmless duplicates) rather than lost.

What is decided before the first byte, so nothing of it can change after: who the user is and that the workspace
shows (pages/guard.py ran; its redirects and the boot page take the ordinary path). An exception while building
the page is answered as NiceGUI answers it (the page exception handler's page, rendered after the shell, which is
removed first); only its status is 200 instead of 500, the first chunk having gone out with it.

The shell's paint stylesheet (``inbox_shell.PAINT_CSS``) still follows the rows: when the page is built quickly
the two chunks can arrive together, and the deferred scripts would then run before the rows got a frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable

from nicegui import Client, binding, core, helpers, ui
from starlette.requests import Request
from starlette.responses import StreamingResponse

from supportchat_app import theme
from supportchat_app.backend import Workspace
from supportchat_app.components import inbox_list, inbox_pane, inbox_shell, shell_base, sla_badge
from supportchat_app.components.inbox_pane import FirstRows, first_rows
from supportchat_app.state import InboxState
from sync import LocalUser

log = logging.getLogger(__name__)

# with the shell (not the bench's element rows); "0": the page as one response (the same-run comparison)
ENABLED = inbox_pane.SHELL and not inbox_pane.ELEMENT_ROWS and os.environ.get("SUPPORTCHAT_INBOX_STREAM") != "0"
SPLIT = '<script type="importmap">'  # NiceGUI's document: its stylesheets before this, its scripts from here
STYLE = "<style>"  # NiceGUI's document start: its stylesheets (the @imports of Quasar, fonts, its own) from here
LAYERS = re.compile(r"@layer [\w\s,-]+;")  # their first statement: the order of NiceGUI's cascade layers
TITLE = re.compile(r"<title>.*?</title>", re.S)
HEADERS = {"Cache-Control": "no-store", "X-NiceGUI-Content": "page"}  # as NiceGUI's own page responses

# loop turns given to the tasks between this response and the socket: NiceGUI's three BaseHTTPMiddleware layers
# each pass a chunk on from a task of their own (a turn each); more turns than that cost microseconds
HOPS = 12

_starts: dict[tuple[str, str], str] = {}  # (X-Forwarded-Prefix, root path) -> NiceGUI's document start
STARTS_KEPT = 8  # the prefix is a request header: a client sending a new one each time must not grow this without end


def document_start(request: Request) -> str | None:
    """NiceGUI's document up to its scripts, as it renders it for an empty page (None: not the shape expected)."""
    key = (request.headers.get("X-Forwarded-Prefix", ""), str(request.scope.get("root_path", "")))
    found = _starts.get(key)
    if found is None:
        with Client(ui.page(""), request=request) as empty:
            html = bytes(empty.build_response(request).body).decode()
        empty.delete()
        if SPLIT not in html:
            log.warning("NiceGUI's page no longer has %s: the workspace is not streamed", SPLIT)
            return None
        if len(_starts) >= STARTS_KEPT:
            _starts.clear()
        found = _starts[key] = html[: html.index(SPLIT)]
    return found


def _rest(sent: str, page: str) -> str:
    """The page NiceGUI rendered, from where ``sent`` (its start as sent ahead) leaves off."""
    split = page.find(SPLIT)
    if split < 0 or not sent:  # not a page of the shape expected (never seen): all of it, after the shell
        return page
    start, rest = page[:split], page[split:]
    if start == sent:
        return rest
    title = TITLE.search(start)
    fix = ""
    if title is not None:
        text = title.group(0)[len("<title>") : -len("</title>")]
        fix = f"<script>document.title={json.dumps(text).replace('<', chr(92) + 'u003c')}</script>"
    if TITLE.sub("", start) != TITLE.sub("", sent):
        fix += TITLE.sub("", start[start.find("<head>") + len("<head>") :] if "<head>" in start else start)
    return fix + rest


def _styles() -> str:
    """What the shell's rows are drawn with before the page's own ``addStyle`` calls run (they repeat it)."""
    return f"<style>{theme.CSS}{inbox_list.CSS}{sla_badge.CSS}{inbox_shell.CSS}</style>"


REMOVE_SHELL = f"<script>document.getElementById({json.dumps(inbox_shell.SHELL_ID)})?.remove()</script>"


def workspace_response(
    request: Request,
    client: Client,
    workspace: Workspace,
    *,
    user: LocalUser,
    ticket_id: str | None,
    build: Callable[[FirstRows], None],
) -> StreamingResponse:
    """The workspace page as a stream. Its first list is the one a new ``WorkspaceView`` shows
    (pages/workspace.py: every agent starts on their own tickets, an admin on all)."""
    engine = workspace.engine
    state = InboxState(view="all" if user.role == "admin" else "mine", selected=ticket_id)
    first = first_rows(engine, user, state)
    entries = 4 + len(engine.workspace.saved_views()) if user.is_staff else None  # views_bar's entries
    return respond(request, client, first, entries=entries, build=lambda: build(first))


def respond(
    request: Request, client: Client, first: FirstRows, *, entries: int | None, build: Callable[[], None]
) -> StreamingResponse:
    """The page as a stream: the shell of ``first`` now, then the page ``build`` makes in ``client``."""
    shell = inbox_shell.shell_html(
        first.shown, entries=entries, selected=first.selected or "", dark=inbox_shell.saved_dark()
    )

    async def body() -> AsyncIterator[str]:
        # here, not in the page function: NiceGUI's empty page is a Client of its own, and creating one inside
        # the page's client context left the page's element tree broken in the browser (Vue recursed forever)
        start = document_start(request)
        base = shell_base.style(start) if start is not None else None
        if start is None or base is None or STYLE not in start:  # not the document this relies on: in one piece
            yield _page(request, client, "", build)
            return
        cut = start.index(STYLE)  # NiceGUI's stylesheets: after the rows (shell_base has what they need)
        # but the order of its cascade layers first: styles added to the head later (the page's) come
        # before the body's in document order, and the first statement naming a layer fixes where it ranks
        layers = LAYERS.search(start, cut)
        order = f"<style>{layers.group(0)}</style>" if layers is not None else ""
        yield start[:cut] + order + base + _styles() + "</head><body>" + shell
        for _ in range(HOPS):  # the first chunk is on the socket before the build holds the loop
            await asyncio.sleep(0)
        yield _page(request, client, start, build, styles=start[cut:])

    return StreamingResponse(body(), media_type="text/html; charset=utf-8", headers=HEADERS)


def _page(request: Request, client: Client, start: str, build: Callable[[], None], styles: str = "") -> str:
    """The page ``build`` makes, from where ``start`` (sent ahead) left off, after ``styles`` (NiceGUI's
    stylesheets, held back from the first chunk)."""
    try:
        with client:
            build()
        binding._refresh_step()  # as NiceGUI does before rendering a page
        return styles + _rest(start, bytes(client.build_response(request, client.status_code).body).decode())
    except Exception as e:  # what NiceGUI's page wrapper does with a page that raised
        client.handle_exception(e)
        return (REMOVE_SHELL if start else "") + styles + _rest(start, _error_page(request, e))


def _error_page(request: Request, e: Exception) -> str:
    handler = core.app._page_exception_handler
    with Client(ui.page(""), request=request) as error_client:
        if handler is not None:
            handler(e) if helpers.expects_arguments(handler) else handler()
    return bytes(error_client.build_response(request, 500).body).decode()
