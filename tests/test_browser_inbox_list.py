"""The inbox list in a real browser (issue 14, components/inbox_list.js): the rows are drawn by the browser from
data, so what only the browser does is checked here — the keyboard moves between rows (Down/Up) and opens one
(Enter); in selection mode a row's checkbox selects it without opening it; scrolling to the list's end brings
the next rows as data; the SLA badge's text follows the clock in the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from supportchat_app.components.inbox_pane import FIRST_ROWS
from tests.appproc import AppProcess
from tests.conftest import User, Users, create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import seed_ticket
from tests.test_browser_app import REDRAWN, act, click, css, driver, sign_in, until_element

pytestmark = pytest.mark.browser
uses_driver = driver
TOTAL = FIRST_ROWS + 15
ROWS = "[data-testid=ticket-row]"


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


def _row_ids(driver: WebDriver) -> list[str]:
    return list(driver.execute_script(f"return [...document.querySelectorAll('{ROWS}')].map(r => r.dataset.ticketId)"))


def _pane_shows(driver: WebDriver, ticket: str) -> None:
    until_element(driver, css(f'[data-testid=ticket-pane][data-ticket-id="{ticket}"]'), lambda e: e.is_displayed())


def _desk(stack: StackProcess, users: Users, agent: User, n: int, *, subject: str, due_in: str) -> list[str]:
    """`n` tickets of the customer's assigned to `agent`, a message each, their first response due `due_in` from now."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ids = [
            str(
                conn.execute(
                    "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
                    (users.customer.id, agent.id, f"{subject} {i}"),
                ).fetchone()[0]  # type: ignore[index]
            )
            for i in range(n)
        ]
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) select t, %s, 'hello' from unnest(%s::uuid[]) t",
            (users.customer.id, ids),
        )
        conn.execute(
            "update ticket_sla set first_response_due_at = now() + %s::interval where ticket_id = any(%s::uuid[])",
            (due_in, ids),
        )
    return ids


def test_rows_keyboard_checkboxes_scroll_and_countdown_in_chromium(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    agent = create_user(stack.db_url, "agent")  # a desk of its own: exactly these tickets
    # every deadline 30 s ahead: the badges count down to overdue in the page
    ids = _desk(stack, users, agent, TOTAL, subject="List row", due_in="30 seconds")
    sign_in(driver, app, agent.email, agent.password)
    WebDriverWait(driver, 120).until(lambda d: len(_row_ids(d)) >= FIRST_ROWS)
    until_element(driver, css(f"{ROWS} .sc-sla"), lambda e: e.is_displayed(), timeout=120)

    # the keyboard: focus the first row, Down twice, Up once, Enter opens the second row
    shown = _row_ids(driver)
    act(driver, css(f'{ROWS}[data-ticket-id="{shown[0]}"]'), lambda e: e.send_keys(Keys.ARROW_DOWN))
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.activeElement.dataset.ticketId") == shown[1]
    )
    act(driver, css(f'{ROWS}[data-ticket-id="{shown[1]}"]'), lambda e: e.send_keys(Keys.ARROW_DOWN, Keys.ARROW_UP))
    act(driver, css(f'{ROWS}[data-ticket-id="{shown[1]}"]'), lambda e: e.send_keys(Keys.ENTER))
    _pane_shows(driver, shown[1])
    until_element(driver, css(f'{ROWS}.sc-selected[data-ticket-id="{shown[1]}"]'), lambda e: e.is_displayed())

    # selection mode: a checkbox selects its row and does not open it
    click(driver, "[data-testid=bulk-select]")
    click(driver, f'[data-testid=bulk-check][data-ticket-id="{shown[2]}"]')
    until_element(driver, css("[data-testid=bulk-count]"), lambda e: e.text == "1 selected")
    until_element(driver, css(f'[data-testid=bulk-check][data-ticket-id="{shown[2]}"]'), lambda e: e.is_selected())
    _pane_shows(driver, shown[1])  # still the ticket opened before
    click(driver, "[data-testid=bulk-select]")  # selection mode off: the checkboxes go
    WebDriverWait(driver, 30, ignored_exceptions=REDRAWN).until(
        lambda d: not d.find_elements(*css("[data-testid=bulk-check]"))
    )

    # scrolled to its end, the list asks for the next rows and draws them
    driver.execute_script("document.querySelector('[data-testid=inbox-list]').scrollTop = 1e6")
    WebDriverWait(driver, 60).until(lambda d: set(_row_ids(d)) == set(ids))

    # the badges count down in the page: 30 s after the seed every one reads overdue, without a redraw (the
    # last row, on screen after the scroll)
    last = _row_ids(driver)[-1]
    until_element(
        driver, css(f'{ROWS}[data-ticket-id="{last}"] .sc-sla-text'), lambda e: e.text.startswith("overdue"), timeout=90
    )
    until_element(driver, css(f'{ROWS}[data-ticket-id="{last}"] .sc-sla-breached'), lambda e: e.is_displayed())


# for `seconds` (longer than two ticks of the page's countdowns): whether the inbox list's clock moved, and every
# change the page made to an SLA badge
_WATCH_BADGES_JS = """
const seconds = arguments[0], done = arguments[arguments.length - 1];
const list = getElement(document.querySelector('[data-testid=inbox-list]').id.slice(1));
const before = list.now, changes = [];
const observer = new MutationObserver((records) => {
  for (const r of records) {
    const at = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    if (at && at.closest('.sc-sla')) changes.push(r.type + ' ' + (r.attributeName || '') + ' ' + at.className);
  }
});
observer.observe(document.body, {attributes: true, childList: true, characterData: true, subtree: true});
setTimeout(() => { observer.disconnect(); done({moved: list.now !== before, changes}); }, seconds * 1000);
"""


def test_countdowns_touch_nothing_while_no_badge_changes(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    """An idle desk costs its page nothing between the badges' changes: with every deadline days away (the text
    changes once an hour), the inbox list is not redrawn every second and the ticket header's badge is not
    rewritten (before, the list's clock moved every second, redrawing every row, and the header's badge had its
    class, state and text set again every second, each one a DOM change the page reacted to)."""
    agent = create_user(stack.db_url, "agent")
    # days and half an hour away: no badge's text ("3d 0h") or state changes for the next half hour
    ids = _desk(stack, users, agent, 3, subject="Far deadline", due_in="3 days 30 minutes")
    sign_in(driver, app, agent.email, agent.password)
    driver.get(f"{app.url}/?t={ids[0]}")
    until_element(driver, css(f"{ROWS} .sc-sla"), lambda e: e.is_displayed(), timeout=120)
    until_element(driver, css("[data-testid=ticket-pane] .sc-sla[data-due]"), lambda e: e.is_displayed(), timeout=120)
    driver.set_script_timeout(30)
    seen = driver.execute_async_script(_WATCH_BADGES_JS, 2.5)
    assert not seen["moved"], seen
    assert seen["changes"] == [], seen


def test_a_rows_age_counts_on_while_the_list_is_idle(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """A row's age ("now", "5m") was worked out once, when the server built the row's data, and the row was reused
    while its ticket did not change: an idle inbox said "now" for minutes. The list counts it on in the browser
    from the row's time, as it counts the SLA badges down."""
    agent = create_user(stack.db_url, "agent", "Ida Idle")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    sign_in(driver, app, agent.email, agent.password)
    # written once the page is up (it comes live): "now" lasts a minute from the message, and a sign-in and first
    # sync on a loaded machine could take most of it when the message was written before them
    ticket = seed_ticket(stack.db_url, customer, agent, "Quiet afternoon", [(customer, "Just checking", False)])
    age = (By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"] [data-testid=row-age]')
    WebDriverWait(driver, 30, ignored_exceptions=REDRAWN).until(lambda d: d.find_element(*age).text == "now")
    # nothing about the ticket changes: a minute after the message, the row says so by itself
    WebDriverWait(driver, 120, ignored_exceptions=REDRAWN).until(lambda d: d.find_element(*age).text == "1m")
