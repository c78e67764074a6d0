"""Issue 10 item 1, as an attacker on the same machine tries it: the app's web UI, signed in and
with no tab open, gives nothing to a plain HTTP client, to a page reaching it by DNS rebinding (a
foreign Host or Origin), to NiceGUI's socket, or to a second browser; only the browser that opened
the launch URL (the window's) gets the inbox.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

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
        row = conn.execute("insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
                           (users.customer.id, users.agent.id, SUBJECT)).fetchone()
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
        connect(f"ws://127.0.0.1:{app.port}/_nicegui_ws/socket.io/?EIO=4&transport=websocket", open_timeout=10,
                additional_headers={"Cookie": token}, origin="http://attacker.example")  # type: ignore[arg-type]


@pytest.mark.browser
def test_a_second_browser_sees_only_the_signed_out_page(signed_in_app: tuple[AppProcess, str],
                                                        driver: object) -> None:  # noqa: F811
    app, ticket = signed_in_app
    owner = driver
    owner.get(app.launch_url)  # type: ignore[attr-defined]
    WebDriverWait(owner, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"]'))
    other = chrome()
    try:
        other.get(app.url + f"/?t={ticket}")
        assert "Signed out" in other.page_source
        assert SUBJECT not in other.page_source
        other.get(app.url + "/")
        assert not other.find_elements(By.CSS_SELECTOR, "[data-ticket-id]")
    finally:
        other.quit()
