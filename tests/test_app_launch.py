"""Issue 10 item 1, as an attacker on the same machine tries it: the app's web UI, signed in and
with no tab open, gives nothing to a plain HTTP client, to a page reaching it by DNS rebinding (a
foreign Host or Origin), to NiceGUI's socket, or to a second browser; only the browser that opened
the launch URL (the window's) gets the inbox. A launch URL works once: replayed (read from `ps` or the
terminal) by a plain client or a second browser it gets the signed-out page; more come only from the
key file in the user's data dir (`supportchat open`), which nobody else can read.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from supportchat_app import launch
from sync import RemoteConfig, SyncEngine
from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import chrome, driver  # noqa: F401 (the fixture)

SUBJECT = "Launch guard: payroll export"


@pytest.fixture
async def signed_in_app(stack: StackProcess, users: Users, tmp_path: Path) -> Iterator[tuple[AppProcess, str]]:
    """The app with an agent's session restored from its data dir, and a ticket of theirs."""
    data = tmp_path / "app-data"
    os.environ["SUPPORTCHAT_SESSION_STORE"] = "file"
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir=data)
    await engine.sign_in(users.agent.email, users.agent.password)
    await engine.close()
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (users.customer.id, users.agent.id, SUBJECT),
        ).fetchone()
    assert row is not None
    app = AppProcess(data, stack.api_url, stack.anon_key).start()
    try:
        yield app, str(row[0])
    finally:
        app.stop()


def test_plain_http_clients_get_the_signed_out_page(signed_in_app: tuple[AppProcess, str]) -> None:
    app, ticket = signed_in_app
    with httpx.Client(timeout=30) as http:
        for path in ("/", f"/?t={ticket}", "/signin", "/settings", f"/?launch={'x' * 43}"):
            answer = http.get(app.url + path)
            assert answer.status_code == 403, path
            assert "Signed out" in answer.text and SUBJECT not in answer.text and "agent-" not in answer.text
        polling = http.get(app.url + "/_nicegui_ws/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert polling.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{app.port}/_nicegui_ws/socket.io/?EIO=4&transport=websocket", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_foreign_host_or_origin_is_refused_even_with_the_cookie(signed_in_app: tuple[AppProcess, str]) -> None:
    app, _ = signed_in_app
    with httpx.Client(timeout=30) as http:
        entered = http.get(app.launch_url)
        assert entered.status_code == 303 and entered.headers["location"] == "/"
        cookie = entered.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert http.get(app.url + "/").status_code in (200, 307), "the launched browser gets in"
        # DNS rebinding: the page's own host name arrives in Host
        assert http.get(app.url + "/", headers={"Host": f"attacker.example:{app.port}"}).status_code == 421
        assert http.get(app.url + "/", headers={"Host": "127.0.0.1:1"}).status_code == 421
        assert http.get(app.url + "/", headers={"Origin": "http://attacker.example"}).status_code == 421
        token = cookie.split(";")[0]
    with pytest.raises(InvalidStatus):  # a cross-site socket with the stolen-looking cookie still fails on Origin
        connect(
            f"ws://127.0.0.1:{app.port}/_nicegui_ws/socket.io/?EIO=4&transport=websocket",
            open_timeout=10,
            additional_headers={"Cookie": token},
            origin="http://attacker.example",
        )  # type: ignore[arg-type]


@pytest.mark.browser
def test_a_second_browser_sees_only_the_signed_out_page(signed_in_app: tuple[AppProcess, str], driver: object) -> None:
    app, ticket = signed_in_app
    owner = driver
    owner.get(app.launch_url)  # type: ignore[attr-defined]
    WebDriverWait(owner, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"]'))
    other = chrome()
    try:
        other.get(app.url + f"/?t={ticket}")
        assert "Signed out" in other.page_source
        assert SUBJECT not in other.page_source
        other.get(app.url + "/")
        assert not other.find_elements(By.CSS_SELECTOR, "[data-ticket-id]")
    finally:
        other.quit()


def test_a_used_launch_url_is_dead_for_a_plain_client(signed_in_app: tuple[AppProcess, str]) -> None:
    app, ticket = signed_in_app
    for url in (app.printed_url, app.launch_url):  # the one printed at start, and one minted later
        with httpx.Client(timeout=30) as owner:
            entered = owner.get(url)
            assert entered.status_code == 303
            session = owner.cookies[f"supportchat_launch_{app.port}"]
            assert session not in url, "the cookie is a new session id, never the token of the URL"
            assert owner.get(app.url + "/").status_code in (200, 307), "the browser that redeemed it gets in"
        with httpx.Client(timeout=30) as thief:  # the URL as read from the process table
            replayed = thief.get(url)
            assert replayed.status_code == 403 and "Signed out" in replayed.text and "already" in replayed.text
            assert f"supportchat_launch_{app.port}" not in thief.cookies, "no launch session for the replayer"
            assert thief.get(app.url + f"/?t={ticket}").status_code == 403
            assert SUBJECT not in thief.get(app.url + f"/?t={ticket}").text
        with httpx.Client(timeout=30) as owner_again:  # nor does the same client get a second session from it
            assert owner_again.get(url).status_code == 403


def test_a_launch_url_opened_by_a_signed_in_browser_is_used_up_too(signed_in_app: tuple[AppProcess, str]) -> None:
    """`supportchat open` while the browser still runs: the browser has the cookie, and the new link must die
    all the same (it was passed on a command line); it let the browser in untouched and stayed good for 10 min."""
    app, ticket = signed_in_app
    with httpx.Client(timeout=30) as owner:
        assert owner.get(app.launch_url).status_code == 303
        session = owner.cookies[f"supportchat_launch_{app.port}"]
        url = app.launch_url
        again = owner.get(url.replace("/?", f"/?t={ticket}&"))
        assert again.status_code == 303 and again.headers["location"] == f"/?t={ticket}", "the token leaves the URL"
        assert "set-cookie" not in again.headers and owner.cookies[f"supportchat_launch_{app.port}"] == session
        assert owner.get(app.url + "/").status_code in (200, 307), "the browser is still in"
        assert owner.get(url).status_code == 303, "a used or unknown token in a signed-in browser is only dropped"
    with httpx.Client(timeout=30) as thief:
        replayed = thief.get(url)
        assert replayed.status_code == 403 and "Signed out" in replayed.text
        assert f"supportchat_launch_{app.port}" not in thief.cookies
        assert SUBJECT not in thief.get(app.url + f"/?t={ticket}").text


def test_new_launch_urls_come_only_from_the_users_key_file(signed_in_app: tuple[AppProcess, str]) -> None:
    app, _ = signed_in_app
    folder = app.data_dir / "launch"
    key_file = folder / f"{app.port}.json"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    mint = app.url + "/_supportchat/launch"
    with httpx.Client(timeout=30) as http:
        assert http.post(mint).status_code == 403
        assert http.post(mint, headers={"X-SupportChat-Key": "guess"}).status_code == 403
        assert http.get(mint).status_code == 403
        key = json.loads(key_file.read_text())["key"]
        assert http.post(mint, headers={"X-SupportChat-Key": key}).status_code == 403, "the key itself is no proof"
        nonce = launch.new_secret()
        proved = {launch.NONCE_HEADER: nonce, launch.PROOF_HEADER: launch.key_proof(key, "open", nonce)}
        assert http.post(mint, headers={**proved, "Host": "attacker.example"}).status_code == 421
    opened = subprocess.run(
        [sys.executable, "-m", "supportchat_app", "open", "--print"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SUPPORTCHAT_DATA_DIR": str(app.data_dir)},
    )
    assert opened.returncode == 0, opened.stderr
    url = opened.stdout.strip()
    assert url.startswith(f"{app.url}/?launch=")
    with httpx.Client(timeout=30) as http:
        assert http.get(url).status_code == 303
    app.stop()
    assert not key_file.exists(), "the key file goes with the app"


@pytest.mark.browser
def test_a_used_launch_url_is_dead_for_a_second_browser(signed_in_app: tuple[AppProcess, str], driver: object) -> None:
    app, ticket = signed_in_app
    url = app.launch_url
    owner = driver
    owner.get(url)  # type: ignore[attr-defined]
    WebDriverWait(owner, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"]'))
    other = chrome()
    try:
        other.get(url)
        assert "Signed out" in other.page_source and SUBJECT not in other.page_source
        other.get(app.url + "/")
        assert not other.find_elements(By.CSS_SELECTOR, "[data-ticket-id]")
    finally:
        other.quit()


async def test_an_unused_launch_token_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    async def inbox(scope: dict[str, object], receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inbox"})

    now = [1000.0]
    monkeypatch.setattr(launch.time, "monotonic", lambda: now[0])
    guard = launch.LaunchGuard(inbox, port=1234, key="k", tokens=("late", "early"))
    transport = httpx.ASGITransport(app=guard)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1234") as http:
        assert (await http.get("/?launch=early")).status_code == 303
        now[0] += launch.TOKEN_TTL + 1
        assert (await http.get("/")).text == "inbox", "a redeemed session does not expire with the token"
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1234") as late:
        assert (await late.get("/?launch=late")).status_code == 403, "an unredeemed token expires"
