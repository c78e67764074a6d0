"""Layout defects found walking through the real app in Chromium (headless, through selenium) at the window
sizes its users have: a laptop (1366 px wide) and a narrow window (900 px)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import seed_ticket
from tests.test_browser_app import REDRAWN, app, chrome, click, sign_in

uses = (app,)
pytestmark = pytest.mark.browser

# how far each of the open ticket's header controls reaches past the pane's right edge, in px (0: inside)
OVERFLOW_JS = """
const pane = document.querySelector('[data-testid=ticket-pane]').getBoundingClientRect();
const sel = '[data-testid=ticket-status], [data-testid=ticket-priority], [data-testid=ticket-assignee],'
  + ' [data-testid=release], [data-testid=take]';
return [...document.querySelectorAll(sel)].map((e) => Math.max(0, e.getBoundingClientRect().right - pane.right));
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
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=context-panel]")))
    overflow = narrow.execute_script(OVERFLOW_JS)
    assert len(overflow) == 4, overflow
    assert overflow == [0, 0, 0, 0], f"header controls reach past the ticket pane by {overflow} px"
