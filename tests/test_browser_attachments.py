"""Attachments in a real browser (headless chromium, the real app process, the real stack; issue 12): the agent
pastes a screenshot (a synthetic paste event carrying a PNG File drawn on a canvas) and drops a text file onto
the open ticket, sees both as pending chips, sends; the thumbnail loads from the app's own route; the customer's
browser shows the thumbnail and the file chip, and the lightbox opens on a click (next / previous, Esc closes).
Screenshots, light and dark, are saved to artifacts/screenshots/ (docs/screenshots/ keeps reviewed copies).
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, act, app, chrome, click, css, driver, seed, sign_in, until_element  # noqa: F401

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # reviewed ones: docs/screenshots

# a "screenshot" drawn on a canvas, handed to the page the way the clipboard does (named image.png)
PASTE_JS = """
const done = arguments[arguments.length - 1];
const c = document.createElement('canvas'); c.width = 640; c.height = 360;
const g = c.getContext('2d');
g.fillStyle = '#f8fafc'; g.fillRect(0, 0, 640, 360);
g.fillStyle = '#dc2626'; g.fillRect(0, 0, 640, 56);
g.fillStyle = '#ffffff'; g.font = 'bold 26px sans-serif'; g.fillText('Export failed', 24, 38);
g.fillStyle = '#0f172a'; g.font = '22px sans-serif';
g.fillText('Error 500 while exporting report.csv', 24, 120);
g.fillText('Request id 7f3a-22c1', 24, 160);
c.toBlob((blob) => {
  const data = new DataTransfer();
  data.items.add(new File([blob], 'image.png', {type: 'image/png'}));
  const event = new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
  document.querySelector('textarea[data-testid=composer]').dispatchEvent(event);
  done(event.defaultPrevented);
}, 'image/png');
"""
DROP_JS = """
const data = new DataTransfer();
data.items.add(new File(['order,total\\n1042,19.90\\n'], 'orders.csv', {type: 'text/csv'}));
const target = document.querySelector('[data-testid=thread]');
target.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
const event = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
target.dispatchEvent(event);
return event.defaultPrevented;
"""
THUMB_LOADED = (
    "const i = document.querySelector('[data-testid=attachment-thumb] img');"
    " return !!i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0;"
)


def wait(driver: WebDriver, timeout: float = 60) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout, ignored_exceptions=REDRAWN)


def shoot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))


def set_dark(driver: WebDriver, dark: bool) -> None:
    if ("body--dark" in (driver.find_element(*css("body")).get_attribute("class") or "")) != dark:
        click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: ("body--dark" in (e.get_attribute("class") or "")) == dark)


def test_paste_drop_send_and_the_customer_sees_thumbnail_and_lightbox(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    ticket_id = seed(stack.db_url, users, f"Export fails {time.time_ns() % 100000}")
    sign_in(driver, app, users.agent.email, users.agent.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    wait(driver).until(lambda d: d.find_elements(*css("textarea[data-testid=composer]")))

    assert driver.execute_async_script(PASTE_JS) is True, "the composer took the pasted file"
    assert driver.execute_script(DROP_JS) is True, "the thread took the dropped file"
    wait(driver).until(lambda d: len(d.find_elements(*css("[data-testid=pending-file]"))) == 2)
    names = sorted(
        driver.execute_script(
            "return [...document.querySelectorAll('[data-testid=pending-file]')].map(e => e.innerText)"
        )
    )
    assert any("orders.csv" in n for n in names), names
    assert any("\nScreenshot " in n and ".png\n" in n for n in names), names
    shoot(driver, "attachments-composer-light.png")

    act(driver, css("textarea[data-testid=composer]"), lambda e: e.send_keys("Here is the error I get", Keys.ENTER))
    wait(driver).until(lambda d: d.execute_script(THUMB_LOADED) > 0)
    wait(driver).until(lambda d: not d.find_elements(*css("[data-testid=pending-file]")))
    with psycopg.connect(stack.db_url) as conn:

        def landed(_: object) -> bool:
            row = conn.execute("select count(*) from attachments where ticket_id = %s", (ticket_id,)).fetchone()
            return row == (2,)

        wait(driver).until(landed)
        stored = conn.execute(
            "select a.name, a.mime, m.content from attachments a join messages m on"
            " m.id = a.message_id where a.ticket_id = %s order by a.mime",
            (ticket_id,),
        ).fetchall()
    assert [(m, c) for _, m, c in stored] == [
        ("image/png", "Here is the error I get"),
        ("text/csv", "Here is the error I get"),
    ]
    assert stored[0][0].startswith("Screenshot ")

    customer = chrome()
    try:
        sign_in(customer, app, users.customer.email, users.customer.password)
        click(customer, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
        wait(customer).until(lambda d: d.execute_script(THUMB_LOADED) > 0)
        assert customer.execute_script(THUMB_LOADED) == 480, "a thumbnail made by the app, not the 640 px original"
        src = customer.execute_script("return document.querySelector('[data-testid=attachment-thumb] img').src")
        assert src.startswith(app.url + "/attachment/") and "base64" not in src
        chip = customer.find_element(*css("[data-testid=attachment-chip]"))
        assert "orders.csv" in chip.text
        shoot(customer, "attachments-thread-light.png")
        set_dark(customer, True)
        shoot(customer, "attachments-thread-dark.png")

        click(customer, "[data-testid=attachment-thumb]")
        full = (
            "const i = document.querySelector('[data-testid=lightbox-image]');"
            " return !!i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0;"
        )
        wait(customer).until(lambda d: d.execute_script(full) == 640)
        shoot(customer, "attachments-lightbox-dark.png")
        click(customer, "[data-testid=lightbox-zoom-in]")
        until_element(customer, css("[data-testid=lightbox-zoom]"), lambda e: e.text == "150%")
        ActionChains(customer).send_keys(Keys.ESCAPE).perform()
        wait(customer).until(lambda d: not d.find_elements(*css("[data-testid=lightbox-image]")))
        set_dark(customer, False)
        click(customer, "[data-testid=attachment-thumb]")
        wait(customer).until(lambda d: d.execute_script(full) == 640)
        shoot(customer, "attachments-lightbox-light.png")
    finally:
        customer.quit()
