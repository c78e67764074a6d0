"""The open ticket in a narrow window (components/context_panel.py): at 900 by 768 the customer panel beside the ticket
left it ~340 px, whose header wrapped its controls into four lines (270 of the pane's 650 px) over a thread and a
composer a few words wide. Below 1000 px the panel now folds behind the header's person button, which lays it over
the ticket's right edge, and the panel's close button (or Esc) folds it again; at 1366 by 768 it stays beside the
ticket with no button. Real Chromium (the layout is the browser's), light and dark: saves
artifacts/screenshots/narrow-*.png (or into $SC_SHOTS) to look at; docs/screenshots/ keeps reviewed copies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import ARTIFACTS, REDRAWN, app, chrome, click, css, sign_in, until_element
from tests.test_browser_context import seed

pytestmark = pytest.mark.browser
uses = (app,)
SHOTS = Path(os.environ.get("SC_SHOTS", ARTIFACTS / "screenshots"))
Wait = WebDriverWait[WebDriver]
PANEL, TOGGLE, CLOSE = "[data-testid=context-panel]", "[data-testid=context-toggle]", "[data-testid=context-close]"


def _box(driver: WebDriver, selector: str) -> dict[str, float]:
    box: dict[str, float] = driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        " return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}",
        selector,
    )
    return box


@contextmanager
def _opened(app: AppProcess, stack: StackProcess, users: Users, width: int) -> Iterator[tuple[WebDriver, Wait]]:
    """An agent's app window ``width`` by 768 px with a ticket open whose customer has other tickets and a note."""
    ticket_id = seed(stack.db_url, users)
    driver = chrome(width, 768, app_window=True)
    try:
        sign_in(driver, app, users.agent.email, users.agent.password)
        click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
        wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
        wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='About 40,000.']")))
        wait.until(ec.presence_of_element_located(css(PANEL)))
        yield driver, wait
    finally:
        driver.quit()


def _shots(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for mode in ("light", "dark"):
        if mode == "dark":
            click(driver, "[data-testid=dark-toggle]")
            until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
            # the pointer leaves the toggle, so its tooltip does not cover the header in the picture
            ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, "[data-testid=thread]")).perform()
            tooltip = (By.XPATH, "//*[text()='Light / dark']")
            WebDriverWait(driver, 30).until(ec.invisibility_of_element_located(tooltip))
        driver.save_screenshot(str(SHOTS / f"{name}-{mode}.png"))
    click(driver, "[data-testid=dark-toggle]")  # back to light: the app keeps the choice in its settings
    until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" not in (e.get_attribute("class") or ""))


def test_narrow_window_folds_the_customer_panel_behind_a_button(
    app: AppProcess, stack: StackProcess, users: Users
) -> None:
    with _opened(app, stack, users, 900) as (driver, wait):
        wait.until(ec.invisibility_of_element_located(css(PANEL)))
        wait.until(ec.visibility_of_element_located(css(TOGGLE)))
        _shots(driver, "narrow-900")
        pane, header = _box(driver, "[data-testid=ticket-pane]"), _box(driver, "[data-testid=ticket-pane] > div")
        thread, composer = _box(driver, "[data-testid=thread]"), _box(driver, "[data-testid=composer]")
        # the ticket takes the window's right of the inbox; its header no longer crowds out the thread
        assert pane["right"] >= driver.execute_script("return window.innerWidth") - 1, pane
        assert header["height"] < pane["height"] / 4 < thread["height"], (header, thread, pane)
        assert composer["width"] > pane["width"] / 2, (composer, pane)

        # the person button lays the panel over the ticket's right edge (over the button too); its close folds it
        click(driver, TOGGLE)
        wait.until(ec.visibility_of_element_located(css("[data-testid=context-name]")))
        assert pane["left"] < _box(driver, PANEL)["left"] and _box(driver, PANEL)["right"] <= pane["right"] + 1
        _shots(driver, "narrow-900-customer")
        click(driver, CLOSE)
        wait.until(ec.invisibility_of_element_located(css(PANEL)))
        click(driver, TOGGLE)  # and again: the button's state follows the panel's; Esc folds it too
        wait.until(ec.visibility_of_element_located(css(CLOSE)))
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        wait.until(ec.invisibility_of_element_located(css(PANEL)))
        wait.until(ec.visibility_of_element_located(css(TOGGLE)))


def test_laptop_window_keeps_the_customer_panel_beside_the_ticket(
    app: AppProcess, stack: StackProcess, users: Users
) -> None:
    with _opened(app, stack, users, 1366) as (driver, wait):
        wait.until(ec.visibility_of_element_located(css("[data-testid=context-name]")))
        assert not driver.find_element(By.CSS_SELECTOR, TOGGLE).is_displayed()
        assert not driver.find_element(By.CSS_SELECTOR, CLOSE).is_displayed()
        assert _box(driver, PANEL)["left"] >= _box(driver, "[data-testid=ticket-pane]")["right"] - 1
        _shots(driver, "narrow-1366")
