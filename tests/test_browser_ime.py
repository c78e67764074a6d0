"""Keys an input method takes while it composes (Chinese, Japanese, Korean text: isComposing, and WebKit's
composition-ending keys with only keyCode 229) in a real browser (headless chromium): in the composer Enter sends
nothing, in the edit box Esc cancels nothing and Enter saves nothing; the ordinary keys still do. The composition
events are dispatched from the page (chromium's driver cannot drive an input method); the saves and sends are read
from the server's tables.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, act, app, click, css, driver, seed, sign_in  # noqa: F401 (fixtures)
from tests.test_browser_history import pick

pytestmark = pytest.mark.browser

# keydowns as an input method sends them: composing (isComposing), and the key that ends a composition in WebKit
# (keyCode 229, isComposing false)
_COMPOSING_JS = """
const [box, keys] = arguments;
for (const [key, init] of keys) {
  box.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true, cancelable: true, ...init}));
}
"""
COMPOSING = {"isComposing": True}
WEBKIT_END = {"keyCode": 229}


def composing(driver: WebDriver, selector: str, *keys: tuple[str, dict[str, object]]) -> None:
    act(driver, css(selector), lambda e: driver.execute_script(_COMPOSING_JS, e, [list(k) for k in keys]))


def rows(db_url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query, params).fetchall()


def test_keys_an_input_method_takes_neither_send_nor_save_nor_cancel(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    """review15b: Esc in the edit box cancelled the edit while an input method was composing (only Enter was
    guarded, and only by isComposing: WebKit's composition-ending Enter saved the half-typed text)."""
    ticket_id = seed(stack.db_url, users, f"Composing {time.time_ns() % 100000}")
    sign_in(driver, app, users.agent.email, users.agent.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Chrome 131 on Windows 11.']")))
    mine = "select id, content from messages where ticket_id = %s and sender_id = %s and content like 'Refunded%%'"

    # the composer: the input method's Enters send nothing; the ordinary Enter sends the whole text, once
    composer = "textarea[data-testid=composer]"
    act(driver, css(composer), lambda e: e.send_keys("Refunded"))
    composing(driver, composer, ("Enter", COMPOSING), ("Enter", WEBKIT_END))
    act(driver, css(composer), lambda e: e.send_keys(" today", Keys.ENTER))
    wait.until(lambda _: rows(stack.db_url, mine, ticket_id, users.agent.id))
    ((message_id, content),) = rows(stack.db_url, mine, ticket_id, users.agent.id)
    assert content == "Refunded today"

    # the edit box: the input method's Esc cancels nothing and its Enters save nothing; Save saves the whole text
    bubble = f'[data-message-id="{message_id}"]'
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, f"{bubble} [data-testid=state-sent]")))
    pick(driver, f"{bubble} [data-testid=message-menu]", "[data-testid=menu-edit]")
    editor = f"{bubble} textarea[data-testid=edit-input]"
    act(driver, css(editor), lambda e: (e.send_keys(Keys.CONTROL, "a"), e.send_keys("Refunded on Mon")))
    composing(
        driver, editor, ("Escape", COMPOSING), ("Escape", WEBKIT_END), ("Enter", COMPOSING), ("Enter", WEBKIT_END)
    )
    act(driver, css(editor), lambda e: e.send_keys("day"))
    click(driver, f"{bubble} [data-testid=edit-save]")
    current = "select content from messages where id = %s"
    wait.until(lambda _: rows(stack.db_url, current, message_id) == [("Refunded on Monday",)], "the edit saved")
    revisions = rows(stack.db_url, "select content from message_revisions where message_id = %s", message_id)
    assert revisions == [("Refunded today",)], "one save, of the whole text"
