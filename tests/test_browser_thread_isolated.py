"""A change in the thread's live chunk re-renders only that chunk in the browser, not the page around it
(components/isolated.py around the live chunk in components/thread.py), in headless Chromium on the real app:

NiceGUI renders plain elements inside the nearest Vue component's render, so a new bubble used to re-render the
page up to that component (the header, the composer, every bubble) on every message: the customer's page
applying the update was the largest client-side hop of bench e2e_latency (update arrived → in the DOM).

The test counts NiceGUI's ``renderRecursively`` calls per element while it changes the live chunk's element
the way NiceGUI's update handler does, then waits for Vue's flush: no socket message can run in between (they
are tasks; the flush is a microtask), so the count is that change's alone.
"""

from __future__ import annotations

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
    wait = WebDriverWait(driver, 120, ignored_exceptions=REDRAWN)
    wait.until(
        lambda d: d.execute_script(
            "return window.did_handshake === true && !!document.querySelector('[data-testid=thread-live]')"
            " && !!document.querySelector('[data-testid=ticket-subject]')"
        )
    )
    counts = driver.execute_async_script(_CHANGE_LIVE_JS)
    assert counts["probed"], "the change reached the page"
    assert counts["live"] >= 1, counts  # the chunk itself was rendered again
    assert counts["subject"] == 0, counts  # the header was not
