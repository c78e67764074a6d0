"""The workspace page streamed in two parts (issue 14, pages/head_start.py), through NiceGUI's simulated `User` on
the real stack and the app's own ASGI stack: the first chunk carries the inbox's first rows as the shell and goes
out before the page is built (no list element exists yet when it is sent); the second is the page, which the
simulated browser then runs as usual; the shell's rows are the live list's. A page that fails while being built
answers with the error page after taking the shell away.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from nicegui import Client, core, ui

from supportchat_app.components.inbox_list import InboxList
from supportchat_app.components.inbox_pane import FIRST_ROWS, INBOX_LIMIT
from supportchat_app.pages import workspace as workspace_page
from tests.conftest import Users, create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)

pytestmark = pytest.mark.timeout(240)
SHELL_ROW = re.compile(r'data-testid="shell-row" data-ticket-id="([0-9a-f-]+)"')


async def _get(
    user: Any, path: str, log: list[str] | None = None
) -> tuple[list[tuple[bytes, bool]], list[tuple[bytes, bytes]]]:
    """GET ``path`` through the app's ASGI stack with this browser's cookies: the body messages as sent, each with
    whether a list element existed in any page at that moment (the page not yet built: none did), and the
    response headers. ``log`` gets a "chunk" entry as each body message is sent."""
    cookie = "; ".join(f"{k}={v}" for k, v in user.http_client.cookies.items())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", b"test"), (b"cookie", cookie.encode()), (b"accept", b"text/html")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    lists_before = {id(e) for c in Client.instances.values() for e in c.elements.values() if isinstance(e, InboxList)}
    chunks: list[tuple[bytes, bool]] = []
    headers: list[tuple[bytes, bytes]] = []
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the browser stays connected (cancelled when the response is done)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])
        elif message["type"] == "http.response.body" and message.get("body"):
            built = any(
                isinstance(e, InboxList) and id(e) not in lists_before
                for c in Client.instances.values()
                for e in c.elements.values()
            )
            chunks.append((message["body"], built))
            if log is not None:
                log.append("chunk")

    await core.app(scope, receive, send)
    return chunks, headers


async def test_the_first_rows_go_out_before_the_page_is_built(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")  # a desk of its own: exactly these tickets
    ids = [
        seed_ticket(stack.db_url, users.customer, agent, f"Streamed {i}", [(users.customer, f"hi {i}", False)])
        for i in range(3)
    ]
    async with running_app() as page:
        await sign_in(page, agent)
        await eventually(engine_of(page).cache.initial_sync_done, "the first sync done")
        chunks, headers = await _get(page, "/")
        assert (b"x-nicegui-content", b"page") in headers
        assert len(chunks) >= 2, "the page came in one piece"
        first, built_at_first = chunks[0]
        assert not built_at_first, "the first chunk waited for the page's list element"
        text = first.decode()
        assert set(SHELL_ROW.findall(text)) == set(ids)  # the shell's rows: this agent's tickets
        assert "Streamed 1" in text and "createApp(" not in text and "client_id" not in text
        document = b"".join(c for c, _ in chunks).decode()
        assert document.count('id="sc-inbox-shell"') == 1 and document.count("<title>") == 1
        assert "createApp(" in document and "'client_id'" in document  # the page itself follows
        # the simulated browser runs that page as it would any other: the live list shows the shell's rows
        await page.open("/")
        await page.should_see("Streamed 2", retries=WAIT)


async def test_the_first_chunk_queries_only_the_rows_it_shows(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the first byte only the shell's rows are queried (the inbox's first FIRST_ROWS tickets); the whole
    list the pane holds (up to INBOX_LIMIT: its count line, keyboard steps, more rows on scroll) is queried while
    the page is built, after the first chunk went out."""
    agent = create_user(stack.db_url, "agent")
    ids = [
        seed_ticket(stack.db_url, users.customer, agent, f"Many {i}", [(users.customer, f"hi {i}", False)])
        for i in range(FIRST_ROWS + 5)
    ]
    async with running_app() as page:
        await sign_in(page, agent)
        engine = engine_of(page)
        await eventually(engine.cache.initial_sync_done, "the first sync done")
        await eventually(lambda: engine.cache.count("tickets") >= len(ids), "every ticket cached")
        log: list[str] = []
        original = engine.workspace.inbox
        earlier: set[str] = set()  # the pages before the one asked for (their timers query lists too)

        def inbox(f: Any, now: Any = None, limit: int = 200) -> Any:
            try:
                page_id: str | None = ui.context.client.id
            except RuntimeError:  # no page's context: not the page asked for
                page_id = None
            if page_id is not None and page_id not in earlier:
                log.append(f"inbox {limit}")
            return original(f, now, limit)

        monkeypatch.setattr(engine.workspace, "inbox", inbox)
        earlier.update(Client.instances)
        chunks, _ = await _get(page, "/", log)
        first = chunks[0][0].decode()
        assert len(SHELL_ROW.findall(first)) == FIRST_ROWS  # the shell: the list's first rows
        before = log[: log.index("chunk")]
        assert before == [f"inbox {FIRST_ROWS}"], f"queried before the first byte: {before}"
        after = log[log.index("chunk") :]
        assert f"inbox {INBOX_LIMIT}" in after, f"the pane's whole list was not queried: {log}"
        document = b"".join(c for c, _ in chunks).decode()
        assert f"{len(ids)} tickets" in document  # the count line counts the whole list
        # a ticket opened by its link below the first rows: the whole list first, its row drawn in the shell
        below = next(t for t in ids if t not in SHELL_ROW.findall(first))
        log.clear()
        earlier.update(Client.instances)
        chunks, _ = await _get(page, f"/?t={below}", log)
        assert below in SHELL_ROW.findall(chunks[0][0].decode())
        assert log[: log.index("chunk")] == [f"inbox {FIRST_ROWS}", f"inbox {INBOX_LIMIT}"]


async def test_a_page_that_fails_while_built_shows_the_error_page_without_the_shell(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = create_user(stack.db_url, "agent")
    seed_ticket(stack.db_url, users.customer, agent, "Before the failure", [(users.customer, "hi", False)])
    async with running_app() as page:
        await sign_in(page, agent)
        await eventually(engine_of(page).cache.initial_sync_done, "the first sync done")

        def broken(self: Any) -> None:
            raise RuntimeError("the page could not be built")

        # the running app's module (the simulation imports the app afresh)
        monkeypatch.setattr(sys.modules[workspace_page.__name__].WorkspaceView, "build", broken)
        chunks, _ = await _get(page, "/")
        document = b"".join(c for c, _ in chunks).decode()
        assert "Before the failure" in chunks[0][0].decode()  # the shell went out first
        rest = document[len(chunks[0][0].decode()) :]
        assert rest.startswith('<script>document.getElementById("sc-inbox-shell")?.remove()</script>')
        assert "Something went wrong on this page" in rest and "RuntimeError" in rest


async def test_the_viewers_are_asked_once_the_page_connected_not_while_it_is_built(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staff's viewers (a round trip to the server) are asked at the page's socket connect, not from the build:
    its tasks run while the browser paints the streamed rows (pages/workspace.py, ``_watch_inbox``)."""
    agent = create_user(stack.db_url, "agent")
    seed_ticket(stack.db_url, users.customer, agent, "Viewed later", [(users.customer, "hi", False)])
    async with running_app() as page:
        await sign_in(page, agent)
        engine = engine_of(page)
        await eventually(engine.cache.initial_sync_done, "the first sync done")
        asked: list[str] = []
        original = engine.presence.watch_inbox

        def watch_inbox() -> Any:
            asked.append("viewers")
            return original()

        monkeypatch.setattr(engine.presence, "watch_inbox", watch_inbox)
        chunks, _ = await _get(page, "/")  # the page streamed and built; no socket connects to it
        assert "createApp(" in b"".join(c for c, _ in chunks).decode()  # built
        assert asked == [], "the viewers were asked while the page was built"
        await page.open("/")  # a browser that runs the page: its socket connects
        await eventually(lambda: asked == ["viewers"], "the viewers asked once the page connected")
