"""A change in the thread's live chunk re-renders only that chunk in the browser, not the page around it
(components/isolated.py around the live chunk in components/thread.py), in headless Chromium on the real app:

NiceGUI renders plain elements inside the nearest Vue component's render, so a new bubble used to re-render the
page up to that component (the header, the composer, every bubble) on every message: the customer's page
applying the update was the largest client-side hop of bench e2e_latency (update arrived → in the DOM).

The test counts NiceGUI's ``renderRecursively`` calls per element while it changes the live chunk's element
the way NiceGUI's update handler does, then waits for Vue's flush: no socket message can run in between (they
are tasks; the flush is a microtask), so the count is that change's alone. The same counting shows that a render
around the thread draws none of its bubbles again, and that a new live bubble draws none of the earlier ones.
"""

from __future__ import annotations

import itertools

import psycopg
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import PASSWORD, create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, app, driver, sign_in  # noqa: F401 (fixtures)

# the live chunk's element (the column holding new bubbles), changed as NiceGUI's update handler does (a new
# element object under the same id); returns how often each element was rendered for it
_CHANGE_LIVE_JS = """
const done = arguments[arguments.length - 1];
const counts = {};
const original = window.renderRecursively;
window.renderRecursively = function (elements, id, context) {
  counts[id] = (counts[id] || 0) + 1;
  return original(elements, id, context);
};
const live = document.querySelector('[data-testid=thread-live]').id.slice(1);
const elements = mounted_app.elements;
elements[live] = {...elements[live], class: [...elements[live].class, 'sc-probe']};
mounted_app.$nextTick().then(() => {
  window.renderRecursively = original;
  const subject = document.querySelector('[data-testid=ticket-subject]').id.slice(1);
  done({live: counts[live] || 0, subject: counts[subject] || 0, total: Object.values(counts).reduce((a, b) => a + b, 0),
        probed: document.querySelector('[data-testid=thread-live]').classList.contains('sc-probe')});
});
"""


def test_a_change_in_the_live_chunk_renders_only_the_chunk(
    app: AppProcess,
    driver: WebDriver,
    stack: StackProcess,
) -> None:
    _ticket_page(stack, app, driver)
    counts = driver.execute_async_script(_CHANGE_LIVE_JS)
    assert counts["probed"], "the change reached the page"
    assert counts["live"] >= 1, counts  # the chunk itself was rendered again
    assert counts["subject"] == 0, counts  # the header was not


# renderRecursively's calls per element id from now on (window.__renders), the hook left in place
_COUNT_RENDERS_JS = """
window.__renders = {};
if (!window.__countingRenders) {
  const original = window.renderRecursively;
  window.renderRecursively = function (elements, id, context) {
    window.__renders[id] = (window.__renders[id] || 0) + 1;
    return original(elements, id, context);
  };
  window.__countingRenders = true;
}
"""

# the thread's own element changed as NiceGUI's update handler does (what a page of older bubbles or the thread's
# top row does); returns how often each bubble was rendered for it: counted from the change on, in the same task (an
# update the app sent between installing the counter and this script, a bubble's receipt or picture, is not the change)
_CHANGE_THREAD_JS = """
const done = arguments[arguments.length - 1];
window.__renders = {};
const thread = document.querySelector('[data-testid=thread]').id.slice(1);
const elements = mounted_app.elements;
elements[thread] = {...elements[thread], class: [...elements[thread].class, 'sc-probe']};
mounted_app.$nextTick().then(() => {
  const bubbles = [...document.querySelectorAll('[data-message-id]')].map(n => n.id.slice(1));
  done({thread: window.__renders[thread] || 0, bubbles: bubbles.map(id => window.__renders[id] || 0),
        probed: document.querySelector('[data-testid=thread]').classList.contains('sc-probe')});
});
"""


# the element under a selector changed as NiceGUI's update handler does; returns how often the ticket's subject (in
# the ticket's header) and the dark mode button (in the page's header) were rendered for it, and whether the change
# reached the page
_CHANGE_ELEMENT_JS = """
const selector = arguments[0], done = arguments[arguments.length - 1];
const counts = {};
const original = window.renderRecursively;
window.renderRecursively = function (elements, id, context) {
  counts[id] = (counts[id] || 0) + 1;
  return original(elements, id, context);
};
const changed = document.querySelector(selector).id.slice(1);
const elements = mounted_app.elements;
elements[changed] = {...elements[changed], class: [...elements[changed].class, 'sc-probe']};
mounted_app.$nextTick().then(() => {
  window.renderRecursively = original;
  const subject = document.querySelector('[data-testid=ticket-subject]').id.slice(1);
  const toggle = document.querySelector('[data-testid=dark-toggle]').id.slice(1);
  done({changed: counts[changed] || 0, subject: counts[subject] || 0, toggle: counts[toggle] || 0,
        probed: document.querySelector(selector).classList.contains('sc-probe')});
});
"""


def test_what_changes_at_every_message_renders_only_itself(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """The parts of the page a message changes besides its bubble (the sync status's pending count, the inbox's rows,
    the ticket's "seen" footer) re-render only themselves: before, each change re-rendered the whole page (every
    Quasar field, the dark mode's body class) several times per message, on both sides."""
    _ticket_page(stack, app, driver)
    for selector in (
        "[data-testid=sync-status] .q-badge",
        "[data-testid=inbox-list]",
        "[data-testid=ticket-footer]",
    ):
        counts = driver.execute_async_script(_CHANGE_ELEMENT_JS, selector)
        assert counts["probed"], (selector, "the change reached the page")
        assert counts["changed"] >= 1, (selector, counts)  # the element itself was rendered again
        assert counts["subject"] == counts["toggle"] == 0, (selector, counts)  # the page around it was not


def _ticket_page(stack: StackProcess, app: AppProcess, driver: WebDriver) -> tuple[str, str]:
    """A customer's ticket with one message, open in the customer's page; (ticket id, the agent's id)."""
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, 'Isolated') returning id",
            (customer.id, agent.id),
        ).fetchone()
        assert row is not None
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'hello')", (row[0], customer.id)
        )
    sign_in(driver, app, customer.email, PASSWORD)
    driver.get(f"{app.url}/?t={row[0]}")
    WebDriverWait(driver, 120, ignored_exceptions=REDRAWN).until(
        lambda d: d.execute_script(
            "return window.did_handshake === true && !!document.querySelector('[data-testid=thread-live]')"
            " && !!document.querySelector('[data-message-id]')"
            " && !!document.querySelector('[data-testid=ticket-subject]')"
        )
    )
    return str(row[0]), agent.id


def _agent_says(stack: StackProcess, driver: WebDriver, ticket_id: str, agent_id: str, text: str) -> None:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)", (ticket_id, agent_id, text)
        )
    WebDriverWait(driver, 60, ignored_exceptions=REDRAWN).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('[data-message-id]')]"
            ".some(n => n.textContent.includes(arguments[0]))",
            text,
        )
    )


def test_a_render_around_the_thread_reuses_its_bubbles(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """What renders the thread's element again (its parent component's render) draws no bubble again: each
    `Isolated` part reuses its children's vnodes while nothing in them changed (before, every bubble was)."""
    ticket_id, agent_id = _ticket_page(stack, app, driver)
    _agent_says(stack, driver, ticket_id, agent_id, "a live one")  # one bubble in a page, one in the live chunk
    driver.execute_script(_COUNT_RENDERS_JS)
    counts = driver.execute_async_script(_CHANGE_THREAD_JS)
    assert counts["probed"], "the change reached the page"
    assert counts["thread"] >= 1, counts  # the thread itself was rendered again
    assert len(counts["bubbles"]) == 2, counts
    assert counts["bubbles"] == [0, 0], counts  # its bubbles were not


def test_a_new_bubble_renders_no_earlier_live_bubble(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """A message arriving draws its own bubble; the live chunk's earlier bubbles are not rendered again (each
    sits in an `Isolated` of its own; before, the whole live chunk was, so the cost grew with the conversation)."""
    ticket_id, agent_id = _ticket_page(stack, app, driver)
    for i in range(3):
        _agent_says(stack, driver, ticket_id, agent_id, f"earlier {i}")
    earlier = driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=thread-live] [data-message-id]')].map(n => n.id.slice(1))"
    )
    assert len(earlier) == 3, earlier
    driver.execute_script(_COUNT_RENDERS_JS)
    _agent_says(stack, driver, ticket_id, agent_id, "the newest")
    renders = driver.execute_script("return window.__renders")
    newest = driver.execute_script(
        "return [...document.querySelectorAll('[data-message-id]')].find(n => n.textContent.includes('the newest'))"
        ".id.slice(1)"
    )
    assert renders.get(newest, 0) >= 1, renders  # the counting saw the new bubble drawn
    assert [renders.get(i, 0) for i in earlier] == [0, 0, 0], renders


# the page's scripts from the app from now on (window.__scripts): NiceGUI's run_javascript messages
_COUNT_SCRIPTS_JS = """
window.__scripts = [];
window.socket.on('run_javascript', (msg) => window.__scripts.push(msg.code));
"""


def test_a_new_bubble_adds_nothing_to_the_page_head(app: AppProcess, driver: WebDriver, stack: StackProcess) -> None:
    """Messages arriving on the open ticket add no stylesheet to the page and write no unchanged title: the bubbles'
    file styles are in the page once, from its start (before, every bubble sent them again, one more <style> in
    the page each, whose whole document's style was then recalculated; and every redraw of the inbox wrote the
    same title again)."""
    ticket_id, agent_id = _ticket_page(stack, app, driver)
    thumb_sheets = (
        "return [...document.querySelectorAll('style')].filter(s => s.textContent.includes('.sc-thumb {')).length"
    )
    assert driver.execute_script(thumb_sheets) == 1  # the bubbles' file styles are there, once
    sheets = driver.execute_script("return document.querySelectorAll('style').length")
    driver.execute_script(_COUNT_SCRIPTS_JS)
    for i in range(3):
        _agent_says(stack, driver, ticket_id, agent_id, f"styled {i}")
    assert driver.execute_script(thumb_sheets) == 1
    assert driver.execute_script("return document.querySelectorAll('style').length") == sheets
    scripts = driver.execute_script("return window.__scripts")
    assert not [s for s in scripts if "addStyle" in s], scripts
    titles = ["SupportChat", *(s.split('"')[1] for s in scripts if s.startswith("document.title"))]
    assert all(a != b for a, b in itertools.pairwise(titles)), titles  # each write a new title
    assert driver.title == titles[-1]


# the elements each update from the app changed from now on (window.__updated)
_COUNT_UPDATES_JS = """
window.__updated = [];
window.socket.on('update', (msg) => window.__updated.push(...Object.keys(msg)));
"""


def test_a_plain_reply_leaves_the_empty_file_tray_alone(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """Sending a reply without files does not redraw the composer's empty file tray (before, every send cleared and
    redrew it: an update outside every isolated part, so the whole page was rendered again)."""
    _ticket_page(stack, app, driver)
    tray = driver.execute_script("return document.querySelector('[data-testid=pending-files]').id.slice(1)")
    driver.execute_script(_COUNT_UPDATES_JS)
    driver.execute_script(
        "const ta = document.querySelector('textarea[data-testid=composer]'); ta.value = 'no files here';"
        "ta.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));"
    )
    WebDriverWait(driver, 60, ignored_exceptions=REDRAWN).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('[data-message-id]')].some(n =>"
            " n.getAttribute('data-message-id') !== 'echo' && n.textContent.includes('no files here'))"
        )
    )
    updated = driver.execute_script("return window.__updated")
    assert updated, "the reply's bubble came as an update"
    assert tray not in updated, updated
