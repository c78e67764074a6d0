"""Layout defects found walking through the real app in Chromium (headless, through selenium) at the window
sizes its users have: a laptop (1366 px wide) and a narrow window (900 px)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import seed_ticket
from tests.test_browser_app import REDRAWN, act, app, chrome, click, css, driver, sign_in, until_element
from tests.test_browser_history import pick
from tests.test_sync_support import snooze_on_server, sql

uses = (app, driver)
pytestmark = pytest.mark.browser

# how far each of the open ticket's header controls reaches past the pane's right edge, in px (0: inside)
OVERFLOW_JS = """
const pane = document.querySelector('[data-testid=ticket-pane]').getBoundingClientRect();
const sel = '[data-testid=ticket-status], [data-testid=ticket-priority], [data-testid=ticket-assignee],'
  + ' [data-testid=release], [data-testid=take]';
return [...document.querySelectorAll(sel)].map((e) => Math.max(0, e.getBoundingClientRect().right - pane.right));
"""

# the middle of each header control: within a few px of each other when they share a line (the row centres them)
LINES_JS = """
const sel = '[data-testid=ticket-status], [data-testid=ticket-priority], [data-testid=ticket-assignee],'
  + ' [data-testid=release], [data-testid=take]';
return [...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect()).map((r) => (r.top + r.bottom) / 2);
"""


@pytest.fixture
def narrow() -> Iterator[WebDriver]:
    d = chrome(900, 768)
    try:
        yield d
    finally:
        d.quit()


def test_ticket_header_controls_stay_in_the_pane_in_a_narrow_window(
    app: AppProcess, narrow: WebDriver, stack: StackProcess
) -> None:
    """At 900 px the header's status, priority, assignee and Release did not wrap: Release was drawn over the
    customer panel beside the ticket. The row wraps now, and every control is inside the ticket's pane."""
    agent = create_user(stack.db_url, "agent", "Nora Narrow")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Invoice shows the wrong VAT number", [(customer, "Hi", False)])
    sign_in(narrow, app, agent.email, agent.password)
    click(narrow, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    wait = WebDriverWait(narrow, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=release]")))
    # below 1000 px the customer panel folds behind the header's person button (tests/test_browser_narrow.py)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=context-toggle]")))
    overflow = narrow.execute_script(OVERFLOW_JS)
    assert len(overflow) == 4, overflow
    assert overflow == [0, 0, 0, 0], f"header controls reach past the ticket pane by {overflow} px"
    # a wider window keeps the controls on the customer's line, as before the row could wrap
    narrow.set_window_size(1200, 800)

    def one_line(d: WebDriver) -> bool:
        middles = d.execute_script(LINES_JS)
        return len(middles) == 4 and max(middles) - min(middles) < 8

    try:
        wait.until(one_line)
    except TimeoutException:
        middles = narrow.execute_script(LINES_JS)
        raise AssertionError(f"the header's controls on several lines at 1200 px: {middles}") from None


def test_typing_a_tag_and_enter_adds_the_first_match(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """The tag editor promises "t, type, Enter": Enter added nothing unless an option had been highlighted with
    the arrow keys first (Quasar's select), and closed the list. It takes the first match now."""
    stamp = uuid.uuid4().hex[:6]
    agent = create_user(stack.db_url, "agent", "Tom Tagger")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    sql(
        stack.db_url,
        "insert into tags (name, color) values (%s, '#16a34a'), (%s, '#dc2626')",
        f"bug-{stamp}",
        f"billing-{stamp}",
    )
    ticket = seed_ticket(stack.db_url, customer, agent, "Charged twice", [(customer, "Two charges", False)])
    sign_in(driver, app, agent.email, agent.password)
    click(driver, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=add-tag]")))
    name = f"billing-{stamp}"
    chips = "[data-testid=tag-editor] [data-testid=tag]"

    def tagged(d: WebDriver) -> bool:
        """t (from the page, not the composer), part of the name, and once the list offers the tag (the options
        arrive with the workspace's first sync) Enter in that same box: true once the chip shows. Enter goes to
        the box that was typed into, in the same attempt: the header may be drawn anew meanwhile (the ticket's SLA
        row landing), and then the box is gone (stale: tried again) instead of Enter reaching whatever has the
        focus after it."""
        if [e.text for e in d.find_elements(By.CSS_SELECTOR, chips)] == [name]:
            return True
        act(d, css("[data-testid=ticket-subject]"), lambda e: e.click())
        ActionChains(d).send_keys("t").perform()
        field = d.switch_to.active_element
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(name[:9])
        try:
            WebDriverWait(d, 3).until(lambda d: name in [e.text for e in d.find_elements(By.CSS_SELECTOR, ".q-item")])
        except TimeoutException:
            field.send_keys(Keys.ESCAPE)
            return False
        field.send_keys(Keys.ENTER)
        try:
            WebDriverWait(d, 3, ignored_exceptions=REDRAWN).until(
                lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, chips)] == [name]
            )
        except TimeoutException:
            return False
        return True

    wait.until(tagged)


def test_edit_from_the_message_menu_puts_the_caret_in_the_text(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """Edit opened the text box without the focus (the closing menu took it back from the box's autofocus), so
    Esc and Ctrl+Enter did nothing until a click into the box. The box has the focus now: Esc closes it."""
    agent = create_user(stack.db_url, "agent", "Eddie Editor")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    text = "Refunded: your reference is RF-1234."
    ticket = seed_ticket(stack.db_url, customer, agent, "Refund", [(customer, "Refund?", False), (agent, text, False)])
    mid = str(sql(stack.db_url, "select id from messages where ticket_id = %s and content = %s", ticket, text)[0][0])
    sign_in(driver, app, agent.email, agent.password)
    click(driver, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    bubble = f'[data-message-id="{mid}"]'
    pick(driver, f"{bubble} [data-testid=message-menu]", "[data-testid=menu-edit]")
    editor = f"{bubble} textarea[data-testid=edit-input]"
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(lambda d: keys_to_focused(d, editor, Keys.ESCAPE))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, editor))


def keys_to_focused(driver: WebDriver, selector: str, *keys: str) -> bool:
    """Send ``keys`` to the element under ``selector`` if it has the focus (False if not yet): checked and typed
    into in one attempt, the same element, so a redraw in between cannot send them to whatever has the focus after
    it (a replaced element is stale: the wait tries again)."""
    box = driver.find_element(By.CSS_SELECTOR, selector)
    if driver.switch_to.active_element != box:
        return False
    box.send_keys(*keys)
    return True


def test_enter_saves_an_edit_and_shift_enter_adds_a_line(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """ux14's walkthrough: the edit box gave no hint of its keys, and Enter added a line there while the composer
    sends on Enter. As in the composer now: Enter saves, Shift+Enter is a new line, and the line under the box
    says so (with Esc to cancel)."""
    agent = create_user(stack.db_url, "agent", "Ed Enter")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    text = "Your parcel left the depot."
    ticket = seed_ticket(stack.db_url, customer, agent, "Parcel", [(customer, "Where?", False), (agent, text, False)])
    mid = str(sql(stack.db_url, "select id from messages where ticket_id = %s and content = %s", ticket, text)[0][0])
    sign_in(driver, app, agent.email, agent.password)
    click(driver, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    bubble = f'[data-message-id="{mid}"]'
    pick(driver, f"{bubble} [data-testid=message-menu]", "[data-testid=menu-edit]")
    editor = f"{bubble} textarea[data-testid=edit-input]"
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    until_element(
        driver,
        css(f"{bubble} [data-testid=edit-hint]"),
        lambda e: e.is_displayed() and e.text == "Enter to save · Shift+Enter new line · Esc to cancel",
    )
    wait.until(
        lambda d: keys_to_focused(
            d, editor, Keys.END, " Tracking:", Keys.SHIFT, Keys.ENTER, Keys.NULL, "ZX-42", Keys.ENTER
        )
    )
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, editor))
    WebDriverWait(driver, 60).until(
        lambda _: (
            sql(stack.db_url, "select content from messages where id = %s", mid) == [(f"{text} Tracking:\nZX-42",)]
        )
    )


def test_the_picture_chooser_shows_no_empty_upload_total(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """The profile's picture chooser said "0.0B / 0.00%" under "Choose a picture" before any file was chosen
    (Quasar's uploader header); it shows its label only."""
    agent = create_user(stack.db_url, "agent", "Pia Picture")
    sign_in(driver, app, agent.email, agent.password)
    driver.get(app.url + "/profile")
    wait = WebDriverWait(driver, 60, ignored_exceptions=REDRAWN)
    chooser = (By.CSS_SELECTOR, "[data-testid=avatar-upload]")
    wait.until(ec.visibility_of_element_located(chooser))
    assert "Choose a picture" in driver.find_element(*chooser).text
    assert "0.0B" not in driver.find_element(*chooser).text, driver.find_element(*chooser).text


# the bulk bar's menus whose label is cut ("Prior…"): the label's text is wider than its box
CLIPPED_JS = """
return [...document.querySelectorAll('[data-testid=bulk-bar] .q-field__label')]
  .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent);
"""


def test_the_bulk_bar_menus_show_their_labels_whole(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """In Select mode the bulk bar's menus were 96 px wide: "Prior…" and "Assi…" at every window size (the
    sidebar's width is fixed). They are wide enough for their labels now."""
    agent = create_user(stack.db_url, "agent", "Bea Bulk")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Charged twice", [(customer, "Two charges", False)])
    sign_in(driver, app, agent.email, agent.password)
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"]')))
    click(driver, "[data-testid=bulk-select]")
    click(driver, f'input[data-testid=bulk-check][data-ticket-id="{ticket}"]')
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=bulk-priority]")))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=bulk-assignee]")))
    assert driver.execute_script(CLIPPED_JS) == []


def test_a_snoozed_row_says_until_when_in_full(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """The Snoozed list's rows say until when; beside the status, priority and assignee the words were cut
    ("Snoozed until tor"), so they have a line of their own, shown whole."""
    agent = create_user(stack.db_url, "agent", "Sam Snoozer")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Waiting for the courier", [(customer, "Any news?", False)])
    snooze_on_server(stack.db_url, ticket, priority="high")
    sign_in(driver, app, agent.email, agent.password)
    click(driver, "[data-sc-entry=snoozed]")
    line = (By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"] [data-testid=row-snoozed] span')
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    wait.until(ec.visibility_of_element_located(line))
    assert driver.find_element(*line).text.startswith("Snoozed until tomorrow ")
    width, room = driver.execute_script(
        "const e = arguments[0]; return [e.scrollWidth, e.clientWidth];", driver.find_element(*line)
    )
    assert width <= room + 1, f"the snooze line is cut: {width} px of text in {room} px"


# the snooze button's label: how many lines it takes, and how far it reaches past the ticket pane (px)
SNOOZE_JS = """
const b = document.querySelector('[data-testid=ticket-pane] [data-testid=snooze]');
const label = b.querySelector('.block');
const pane = document.querySelector('[data-testid=ticket-pane]').getBoundingClientRect();
const r = label.getBoundingClientRect(), line = parseFloat(getComputedStyle(label).lineHeight);
return [Math.round(r.height / line), Math.max(0, Math.round(b.getBoundingClientRect().right - pane.right))];
"""


def test_the_snoozed_header_keeps_its_words_on_one_line_in_a_narrow_window(
    app: AppProcess, narrow: WebDriver, stack: StackProcess
) -> None:
    """At 900 px the header's "Snoozed until tomorrow 09:00" was squeezed beside the SLA and tags into two centred
    lines under its icon. The line wraps instead: the button goes under the tags, its words on one line."""
    agent = create_user(stack.db_url, "agent", "Nico Narrow")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Courier lost the parcel", [(customer, "Any news?", False)])
    snooze_on_server(stack.db_url, ticket)
    sign_in(narrow, app, agent.email, agent.password)
    click(narrow, "[data-sc-entry=snoozed]")
    click(narrow, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    wait = WebDriverWait(narrow, 30, ignored_exceptions=REDRAWN)
    button = (By.CSS_SELECTOR, "[data-testid=ticket-pane] [data-testid=snooze]")
    wait.until(lambda d: "Snoozed until tomorrow " in d.find_element(*button).text)
    lines, past = narrow.execute_script(SNOOZE_JS)
    assert (lines, past) == (1, 0), f"the snooze button's words on {lines} lines, {past} px past the pane"
