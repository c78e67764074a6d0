"""The lightbox steps through every image of the thread, not only the clicked message's own (issue 12), in a
real browser: a fresh customer (a quick first sync) has two messages with one picture each; a click on the first
thumbnail opens "1 / 2", the right arrow key shows the other message's picture, the left arrow and the next
button step back and forth, Esc closes."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from sync import RemoteConfig, SyncEngine
from tests.appproc import AppProcess
from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import app, click, css, driver, sign_in, until_element  # noqa: F401
from tests.test_browser_attachments import wait

pytestmark = pytest.mark.browser


async def _two_pictures(stack: StackProcess, customer: User, ticket_id: str, folder: Path) -> None:
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), folder / "sender")
    try:
        await engine.sign_in(customer.email, customer.password)
        await engine.sync_once()
        for name, colour in (("first.png", (220, 40, 40)), ("second.png", (40, 90, 220))):
            out = io.BytesIO()
            Image.new("RGB", (320, 200), colour).save(out, "PNG")
            (folder / name).write_bytes(out.getvalue())
            engine.commands.send_message(ticket_id, f"picture {name}", files=[folder / name])
        await engine.sync_once()
        assert engine.status.pending == 0
    finally:
        await engine.close()


def test_the_lightbox_steps_through_the_threads_images_with_the_arrow_keys(
    app: AppProcess, driver: WebDriver, stack: StackProcess, tmp_path: Path
) -> None:
    customer = create_user(stack.db_url, "customer")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, subject) values (%s, %s) returning id::text",
            (customer.id, f"Two photos {time.time_ns() % 100000}"),
        ).fetchone()
    assert row is not None
    ticket_id = str(row[0])
    asyncio.run(_two_pictures(stack, customer, ticket_id, tmp_path))

    sign_in(driver, app, customer.email, customer.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    wait(driver).until(lambda d: len(d.find_elements(*css("[data-testid=attachment-thumb]"))) == 2)
    click(driver, "[data-testid=attachment-thumb]")  # the first message's picture

    def shows(counter: str, name: str) -> None:
        until_element(driver, css("[data-testid=lightbox-counter]"), lambda e: e.text == counter)
        until_element(driver, css("[data-testid=lightbox-name]"), lambda e: e.text == name)

    shows("1 / 2", "first.png")
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    shows("2 / 2", "second.png")
    ActionChains(driver).send_keys(Keys.ARROW_LEFT).perform()
    shows("1 / 2", "first.png")
    click(driver, "[data-testid=lightbox-next]")
    shows("2 / 2", "second.png")
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait(driver).until(lambda d: not d.find_elements(*css("[data-testid=lightbox-image]")))
