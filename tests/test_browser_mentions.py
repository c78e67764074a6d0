"""The @mention picker from the keyboard in a real browser (issue 14): in an internal note, "@" and the start of
a name offers staff; ↓ moves the highlight, Enter picks it (and does not send the note), Tab picks, Esc closes
the offer and leaves the text alone. The keys are handled in the page (the simulated user cannot run them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users, create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, act, click, css, driver, sign_in, until_element
from tests.test_sync_support import seed_ticket, sql

pytestmark = pytest.mark.browser
uses_driver = driver


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_mention_picker_from_the_keyboard(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    kin = uuid.uuid4().hex[:6]  # a surname only these two colleagues share
    zed = create_user(stack.db_url, "agent", f"Zed Kappa{kin}")
    zoe = create_user(stack.db_url, "admin", f"Zoe Kappa{kin}")
    agent = create_user(stack.db_url, "agent")
    ticket = seed_ticket(stack.db_url, users.customer, agent, "Escalate me", messages=[(users.customer, "help")])
    sign_in(driver, app, agent.email, agent.password)
    click(driver, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    composer = css("textarea[data-testid=composer]")

    def note_mode(d: WebDriver) -> bool:  # Internal note; clicked again if a redraw swallowed the click
        if "internal" in (d.find_element(*composer).get_attribute("placeholder") or "").lower():
            return True
        d.find_element(By.XPATH, "//*[@data-testid='composer-mode']//*[text()='Internal note']").click()
        return False

    WebDriverWait(driver, 60, poll_frequency=1.0, ignored_exceptions=REDRAWN).until(note_mode)

    def value() -> str:
        return driver.find_element(*composer).get_attribute("value") or ""

    options = "[data-testid=mention-picker] [data-testid=mention-option]"
    act(driver, composer, lambda e: e.send_keys(f"Please look @kappa{kin}"))
    until_element(driver, css(options + ".sc-mention-active"), lambda e: e.text.endswith(f"Zed Kappa{kin}"))
    act(driver, composer, lambda e: e.send_keys(Keys.ARROW_DOWN))
    until_element(driver, css(options + ".sc-mention-active"), lambda e: e.text.endswith(f"Zoe Kappa{kin}"))
    act(driver, composer, lambda e: e.send_keys(Keys.ENTER))
    until_element(
        driver, composer, lambda e: (e.get_attribute("value") or "").endswith(f"@[Zoe Kappa{kin}]({zoe.id}) ")
    )
    assert value().startswith("Please look @[Zoe")  # Enter picked: nothing was sent
    assert sql(stack.db_url, "select count(*) from messages where ticket_id = %s", ticket) == [(1,)]

    act(driver, composer, lambda e: e.send_keys(f"and @kappa{kin[:3]}"))
    until_element(driver, css("[data-testid=mention-picker]"), lambda e: e.is_displayed())
    act(driver, composer, lambda e: e.send_keys(Keys.ESCAPE))
    until_element(driver, css("[data-testid=mention-picker]"), lambda e: not e.is_displayed())
    act(driver, composer, lambda e: e.send_keys(kin[3:]))  # typing on after Esc: the offer stays closed
    until_element(driver, composer, lambda e: (e.get_attribute("value") or "").endswith(f"and @kappa{kin}"))
    assert not driver.find_element(*css("[data-testid=mention-picker]")).is_displayed()

    act(driver, composer, lambda e: e.send_keys(" @kappa" + kin))  # a new "@": offered again; Tab picks the first
    until_element(driver, css(options + ".sc-mention-active"), lambda e: e.text.endswith(f"Zed Kappa{kin}"))
    act(driver, composer, lambda e: e.send_keys(Keys.TAB))
    until_element(
        driver, composer, lambda e: (e.get_attribute("value") or "").endswith(f"@[Zed Kappa{kin}]({zed.id}) ")
    )
    act(driver, composer, lambda e: e.send_keys(Keys.ENTER))  # the picker is gone: Enter sends the note
    until_element(driver, composer, lambda e: not e.get_attribute("value"))
