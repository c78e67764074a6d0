"""Read receipts and avatars in a real browser (issue 13): an agent's reply shows "sent" until the customer
opens the ticket in their own browser, then "Read by <customer>" without a reload; the customer's picture
(set through Storage as any client would) shows on their bubbles and the inbox row. Saves
artifacts/screenshots/receipts-light.png and receipts-dark.png (the agent's view) to look at; docs/screenshots/
keeps reviewed copies.

Two browsers on one app process: each browser gets its own session slot and sync engine, like two people
on two machines.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from PIL import Image, ImageDraw
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from supabase import ClientOptions, create_client

from tests.appproc import AppProcess
from tests.conftest import User, Users
from tests.stackproc import StackProcess
from tests.test_browser_app import ARTIFACTS, REDRAWN, app, chrome, click, driver, sign_in, until_element  # noqa: F401

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # reviewed ones: docs/screenshots


@pytest.fixture
def second_driver() -> Iterator[WebDriver]:
    d = chrome(1100, 800)
    try:
        yield d
    finally:
        d.quit()


def picture(color: tuple[int, int, int], letter_color: tuple[int, int, int]) -> bytes:
    """A small portrait-like PNG: a coloured disc with a lighter 'face', enough to tell it from initials."""
    image = Image.new("RGB", (96, 96), color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((28, 16, 68, 56), fill=letter_color)
    draw.ellipse((14, 58, 82, 120), fill=letter_color)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def set_avatar(stack: StackProcess, user: User, data: bytes) -> None:
    """The user sets their picture through Storage and their profile, as any client could."""
    token = stack.mint(sub=user.id, email=user.email)
    with httpx.Client(timeout=60) as http:
        client = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(
                headers={"Authorization": f"Bearer {token}"},
                httpx_client=http,
                auto_refresh_token=False,
                persist_session=False,
            ),
        )
        key = f"{user.id}/avatar-{uuid.uuid4().hex[:12]}.png"
        client.storage.from_("avatars").upload(key, data, {"content-type": "image/png"})
        client.table("profiles").update({"avatar_url": f"avatars/{key}"}).eq("id", user.id).execute()


def seed(stack: StackProcess, users: Users, subject: str, reply: str) -> str:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject, priority) values (%s, %s, %s,"
            " 'normal') returning id",
            (users.customer.id, users.agent.id, subject),
        ).fetchone()
        assert row is not None
        for sender, text in (
            (users.customer, "My invoice shows the wrong company name."),
            (users.customer, "It should say Acme Rockets Ltd."),
            (users.agent, reply),
        ):
            conn.execute(
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)", (row[0], sender.id, text)
            )
    return str(row[0])


def bubble_xpath(text: str, extra: str = "") -> tuple[str, str]:
    return (By.XPATH, f"//*[@data-message-id and @data-message-id!='echo'][.//*[contains(text(), '{text}')]]{extra}")


def test_a_reply_turns_read_when_the_customer_opens_the_ticket(
    app: AppProcess,
    driver: WebDriver,
    second_driver: WebDriver,
    stack: StackProcess,
    users: Users,
) -> None:
    tag = time.time_ns() % 100000
    reply = f"Fixed: the next invoice says Acme Rockets Ltd. ({tag})"
    set_avatar(stack, users.customer, picture((234, 88, 12), (254, 215, 170)))
    set_avatar(stack, users.agent, picture((37, 99, 235), (191, 219, 254)))
    ticket_id = seed(stack, users, f"Invoice company name {tag}", reply)
    wait = WebDriverWait(driver, 60, ignored_exceptions=REDRAWN)

    sign_in(driver, app, users.agent.email, users.agent.password)
    sign_in(second_driver, app, users.customer.email, users.customer.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    try:
        wait.until(ec.visibility_of_element_located(bubble_xpath(reply, "[.//*[@data-testid='state-sent']]")))
        assert not driver.find_elements(*bubble_xpath(reply, "[.//*[@data-testid='state-read']]")), (
            "nobody has read the reply yet"
        )
        # the customer's picture, on their bubbles and on the inbox row, instead of initials
        wait.until(
            ec.visibility_of_element_located(bubble_xpath("wrong company name", "[.//*[@data-testid='avatar-image']]"))
        )
        wait.until(
            ec.visibility_of_element_located(
                (
                    By.CSS_SELECTOR,
                    f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"] [data-testid=avatar-image]',
                )
            )
        )

        # the customer opens the ticket in their own browser: the agent's bubble turns read, live
        row = f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]'
        # the customer's first sync in this browser brings every ticket the suite gave them before the row shows
        WebDriverWait(second_driver, 180, ignored_exceptions=REDRAWN).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, row))
        )
        click(second_driver, row)
        WebDriverWait(second_driver, 60, ignored_exceptions=REDRAWN).until(
            ec.visibility_of_element_located(bubble_xpath(reply))
        )
        wait.until(ec.visibility_of_element_located(bubble_xpath(reply, "[.//*[@data-testid='state-read']]")))
        until_element(
            driver,
            bubble_xpath(reply, "//*[@data-testid='state-read']"),
            lambda e: e.text == f"Read by {users.customer.name}",
        )
        # the customer sees the agent's picture on the reply
        WebDriverWait(second_driver, 60, ignored_exceptions=REDRAWN).until(
            ec.visibility_of_element_located(bubble_xpath(reply, "[.//*[@data-testid='avatar-image']]"))
        )
    except TimeoutException:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "browser-receipts-failed.png"))
        second_driver.save_screenshot(str(ARTIFACTS / "browser-receipts-customer-failed.png"))
        raise

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait.until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('[data-testid=avatar-image] img')].every(i => i.complete)"
        )
    )
    driver.save_screenshot(str(SCREENSHOTS / "receipts-light.png"))
    second_driver.save_screenshot(str(SCREENSHOTS / "receipts-customer-light.png"))
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    driver.save_screenshot(str(SCREENSHOTS / "receipts-dark.png"))
    click(driver, "[data-testid=dark-toggle]")  # the app's settings file is shared by every test of this run
    until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" not in (e.get_attribute("class") or ""))
