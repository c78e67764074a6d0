"""Page loads first (supportchat_app/foreground.py, issue 14 bench `inbox_5k`): the cycle collector does not start
between a request's arrival and its first body bytes, and background turns wait while a request is in flight
(at most ``MAX_WAIT``). Plain ASGI calls, no server: the middleware is exercised as uvicorn calls it.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from supportchat_app import foreground
from supportchat_app.foreground import PageLoads

WAIT = 30.0  # seconds: generous for a loaded machine; every wait below ends as soon as its condition holds


def _scope(path: str = "/") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": []}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_no_cycle_collection_between_a_requests_arrival_and_its_first_bytes() -> None:
    assert gc.isenabled()
    collections: list[int] = []
    seen: dict[str, Any] = {}

    def counted(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    async def page(scope: Any, receive: Any, send: Any) -> None:
        seen["in flight"] = foreground.in_flight()
        seen["enabled before"] = gc.isenabled()
        garbage = []
        for _ in range(gc.get_threshold()[0] * 20):  # far past the young generation's threshold
            node: list[Any] = []
            node.append(node)  # a cycle: only the collector frees it
            garbage.append(node)
        del garbage
        seen["collections before the first bytes"] = len(collections)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        seen["enabled after"] = gc.isenabled()
        await send({"type": "http.response.body", "body": b"rest", "more_body": False})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    gc.callbacks.append(counted)
    try:
        await PageLoads(page)(_scope(), _receive, send)
    finally:
        gc.callbacks.remove(counted)
    assert seen == {
        "in flight": 1,
        "enabled before": False,
        "collections before the first bytes": 0,
        "enabled after": True,
    }
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert foreground.in_flight() == 0 and gc.isenabled()


async def test_a_request_that_fails_before_its_first_bytes_gives_the_collector_back() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        assert not gc.isenabled()
        raise RuntimeError("the page failed")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    with pytest.raises(RuntimeError, match="the page failed"):
        await PageLoads(broken)(_scope(), _receive, send)
    assert gc.isenabled() and foreground.in_flight() == 0


async def test_the_socket_and_a_collector_turned_off_elsewhere_are_left_alone() -> None:
    seen: list[tuple[int, bool]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((foreground.in_flight(), gc.isenabled()))

    async def send(message: dict[str, Any]) -> None:
        pass

    await PageLoads(app)(_scope("/_nicegui_ws/socket.io/"), _receive, send)  # long-lived: not a page load
    assert seen == [(0, True)]
    gc.disable()  # turned off by someone else: a request must not turn it on
    try:
        await PageLoads(app)(_scope(), _receive, send)
        assert seen[-1] == (1, False) and not gc.isenabled()
    finally:
        gc.enable()


async def test_background_turns_wait_while_a_request_is_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(foreground, "MAX_WAIT", 600.0)  # only the request's end may end the wait here
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: dict[str, Any]) -> None:
        pass

    request = asyncio.create_task(PageLoads(slow)(_scope(), _receive, send))
    await asyncio.wait_for(entered.wait(), WAIT)
    background = asyncio.create_task(foreground.turn())
    for _ in range(20):  # the turn's ticks come and go; it keeps waiting for the request
        await asyncio.sleep(foreground.TICK)
    assert not background.done()
    release.set()
    await asyncio.wait_for(request, WAIT)
    await asyncio.wait_for(background, WAIT)  # the request answered: the background's turn comes
    assert foreground.in_flight() == 0


async def test_a_request_that_takes_long_does_not_starve_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(foreground, "MAX_WAIT", 0.05)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def download(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()

    async def send(message: dict[str, Any]) -> None:
        pass

    request = asyncio.create_task(PageLoads(download)(_scope(), _receive, send))
    await asyncio.wait_for(entered.wait(), WAIT)
    try:
        await asyncio.wait_for(foreground.turn(), WAIT)  # a turn after MAX_WAIT, the request still in flight
        assert foreground.in_flight() == 1
    finally:
        release.set()
        await asyncio.wait_for(request, WAIT)


async def test_a_download_is_no_page_load_and_no_request_holds_the_collector_long() -> None:
    """Found by the ninth session's review: an attachment's handler reads the whole file before its first byte,
    and the collector stayed off, process-wide, for all of it (and background turns waited)."""
    seen: dict[str, Any] = {}
    release = asyncio.Event()

    async def download(scope: Any, receive: Any, send: Any) -> None:
        seen["download in flight"], seen["download gc"] = foreground.in_flight(), gc.isenabled()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"file", "more_body": False})

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        seen["slow gc at arrival"] = gc.isenabled()
        await release.wait()  # no bytes for as long as the test likes
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    async def send(message: dict[str, Any]) -> None:
        return None

    assert gc.isenabled()
    await PageLoads(download)(_scope("/attachment/abc"), _receive, send)
    assert seen == {"download in flight": 0, "download gc": True}
    task = asyncio.create_task(PageLoads(slow)(_scope("/"), _receive, send))
    try:
        deadline = asyncio.get_running_loop().time() + WAIT
        while "slow gc at arrival" not in seen and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert seen["slow gc at arrival"] is False  # a page load still holds it at first
        while not gc.isenabled() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert gc.isenabled() and foreground.in_flight() == 1  # on again after GC_HOLD_MAX, request still open
    finally:
        release.set()
        await asyncio.wait_for(task, WAIT)
    assert gc.isenabled() and foreground.in_flight() == 0


async def test_a_request_the_launch_guard_refuses_is_no_page_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """main.guard stacks the middleware as `run` does: the launch guard outermost, so a request without the launch
    cookie is refused before PageLoads sees it (found by the ninth session's review: any local process's refused
    requests counted and held the collector), and a request the guard lets through still does."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from supportchat_app import launch
    from supportchat_app.main import guard

    holds: list[int] = []
    real_hold = foreground._hold_gc
    monkeypatch.setattr(foreground, "_hold_gc", lambda: holds.append(1) or real_hold())
    target = Starlette(routes=[Route("/", lambda request: PlainTextResponse("page"))])
    guard(target, port=8765, key="k" * 32, token="t" * 32)
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {**_scope("/"), "headers": [(b"host", b"127.0.0.1:8765")], "scheme": "http", "query_string": b""}
    await target(scope, _receive, send)
    assert messages[0]["status"] in (401, 403) and holds == []  # refused, never counted
    messages.clear()
    launched = {**scope, "query_string": launch.launch_path("t" * 32).split("?", 1)[1].encode()}
    await target(launched, _receive, send)  # the launch link: redeemed by the guard itself, with a cookie
    cookie = next(v.split(b";")[0] for k, v in messages[0]["headers"] if k.lower() == b"set-cookie")
    assert holds == []
    messages.clear()
    await target({**scope, "headers": [*scope["headers"], (b"cookie", cookie)]}, _receive, send)
    assert messages[0]["status"] == 200 and holds == [1]  # let through: a page load
