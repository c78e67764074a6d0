"""The customer context panel and an inbox row with a colleague's viewer avatar in a real browser (Debian
chromium headless through selenium), light and dark: saves artifacts/screenshots/context-panel-*.png,
inbox-row-viewers-*.png and workspace-context-*.png, the screenshots issue 14 asks for."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, app, click, driver, sign_in, until_element

uses = (app, driver)
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # reviewed ones: docs/screenshots
pytestmark = pytest.mark.browser


def seed(db_url: str, users: Users) -> str:
    stamp = time.time_ns() % 100000
    with psycopg.connect(db_url, autocommit=True) as conn:

        def ticket(subject: str, status: str, lines: list[tuple[str, str]]) -> str:
            row = conn.execute(
                "insert into tickets (customer_id, assignee_id, subject, status) values (%s, %s, %s, %s) returning id",
                (users.customer.id, users.agent.id, subject, status),
            ).fetchone()
            assert row is not None
            for sender, text in lines:
                conn.execute(
                    "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)", (row[0], sender, text)
                )
            # a customer's message reopens a ticket: the status it has now is set after its thread
            conn.execute("update tickets set status = %s where id = %s", (status, row[0]))
            return str(row[0])

        ticket(
            f"Invoice shows the wrong VAT #{stamp}",
            "resolved",
            [
                (users.customer.id, "The VAT on March's invoice is 19%, should be 7%."),
                (users.agent.id, "Corrected and re-sent, sorry about that!"),
            ],
        )
        ticket(
            f"Cannot add a second user #{stamp}", "pending", [(users.customer.id, "The invite button is greyed out.")]
        )
        current = ticket(
            f"Export to CSV times out #{stamp}",
            "open",
            [
                (users.customer.id, "Exporting 2 years of orders never finishes."),
                (users.agent.id, "Looking into it — how many orders roughly?"),
                (users.customer.id, "About 40,000."),
            ],
        )
        conn.execute(
            "insert into customer_notes (customer_id, author_id, body) values (%s, %s, %s)",
            (users.customer.id, users.agent.id, "Runs a wholesale shop; prefers email over phone."),
        )
    return current


def test_context_panel_and_viewer_avatars_light_and_dark(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    ticket_id = seed(stack.db_url, users)
    sign_in(driver, app, users.agent.email, users.agent.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=context-panel]")))
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='About 40,000.']")))

    # the admin opens the same ticket (the database broadcasts it on staff:viewers); repeated until this inbox
    # heard it, because the app subscribes to the topic shortly after the page loads
    admin_token = stack.mint(users.admin.id)
    row_viewers = f'[data-ticket-id="{ticket_id}"] [data-testid=row-viewers]'
    for _ in range(30):
        httpx.post(
            f"{stack.api_url}/rest/v1/rpc/ticket_signal",
            json={"ticket_id": ticket_id, "signal": "viewing"},
            headers={"apikey": stack.anon_key, "Authorization": f"Bearer {admin_token}"},
        ).raise_for_status()
        try:
            WebDriverWait(driver, 1).until(ec.visibility_of_element_located((By.CSS_SELECTOR, row_viewers)))
            break
        except TimeoutException:
            continue
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, row_viewers)))

    SHOTS.mkdir(parents=True, exist_ok=True)
    for mode in ("light", "dark"):
        if mode == "dark":
            click(driver, "[data-testid=dark-toggle]")
            until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
            # the pointer leaves the toggle, so its tooltip does not cover the header in the picture
            composer = driver.find_element(By.CSS_SELECTOR, "[data-testid=composer]")
            ActionChains(driver).move_to_element(composer).perform()
            wait.until(ec.invisibility_of_element_located((By.XPATH, "//*[text()='Light / dark']")))
        driver.save_screenshot(str(SHOTS / f"workspace-context-{mode}.png"))
        panel = driver.find_element(By.CSS_SELECTOR, "[data-testid=context-panel]")
        panel.screenshot(str(SHOTS / f"context-panel-{mode}.png"))
        row = driver.find_element(By.CSS_SELECTOR, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
        row.screenshot(str(SHOTS / f"inbox-row-viewers-{mode}.png"))
    assert (SHOTS / "context-panel-dark.png").stat().st_size > 1000
