"""The inbox's server-rendered first rows in a real browser (issue 14, components/inbox_shell.py): with the
framework's script blocked (so the app never mounts) the page still shows the real rows — subjects, customer
names, SLA badges — with a hostile subject and customer name shown as text, never run; in dark mode the shell
is dark; once the app mounts the shell is gone, the live list shows the same tickets at the same place. And the
sidebar's prefetched lists (components/inbox_prefetch.py): a click draws the entry's rows at once, and the server's
rows replace them when they differ. Saves docs/screenshots/inbox-shell-{light,dark}.png (the page before the
framework started) and inbox-mounted-{light,dark}.png (the same inbox once it did).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from supportchat_app.components import inbox_shell
from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import click, driver, sign_in

pytestmark = pytest.mark.browser
uses_driver = driver
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
HOSTILE_SUBJECT = '<img src=x onerror="window.scPwned=1">Refund </span><b>now</b>'
HOSTILE_NAME = "Eve <script>window.scPwned=2</script>"
ROWS = "[data-testid=ticket-row]"
SHELL_ROWS = "[data-testid=shell-row]"


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


def _ids(driver: WebDriver, selector: str) -> list[str]:
    return list(
        driver.execute_script(f"return [...document.querySelectorAll('{selector}')].map(r => r.dataset.ticketId)")
    )


# the framework's stylesheets (NiceGUI's document imports them): the shell is drawn the same without them
FRAMEWORK_CSS = [
    "*/static/quasar.important.prod.css",
    "*/static/quasar.unimportant.prod.css",
    "*/static/fonts.css",
    "*/static/nicegui.css",
]
# the shell's text, then every element of it as drawn: its box and the styles that show
DRAWN_JS = """
const shell = document.getElementById('sc-inbox-shell');
return [shell.textContent, ...[...document.querySelectorAll('#sc-inbox-shell, #sc-inbox-shell *')].map((e) => {
  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return [e.tagName, e.className, r.x, r.y, r.width, r.height, s.color, s.backgroundColor, s.fontFamily, s.fontSize,
    s.fontWeight, s.lineHeight, s.visibility, s.display].join('|');
})];
"""


def _blocked_load(driver: WebDriver, app: AppProcess, also: list[str] | None = None) -> None:
    """Load the inbox with NiceGUI's script blocked: what shows is what painted before the framework started."""
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/static/nicegui.js", *(also or [])]})
    driver.get(app.url + "/")
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && document.fonts.status === 'loaded'")
    )


def _live_load(driver: WebDriver, app: AppProcess, count: int) -> None:
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.get(app.url + "/")
    WebDriverWait(driver, 60).until(lambda d: len(_ids(d, ROWS)) >= count)


def test_shell_paints_real_escaped_rows_before_the_app_and_goes_when_it_mounts(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")  # a desk of its own: exactly these tickets
    eve = create_user(stack.db_url, "customer", name=HOSTILE_NAME)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ids = [
            str(
                conn.execute(
                    "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
                    (eve.id, agent.id, subject),
                ).fetchone()[0]  # type: ignore[index]
            )
            for subject in ("Printer on fire", HOSTILE_SUBJECT, "Invoice copy")
        ]
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) select t, %s, 'hello' from unnest(%s::uuid[]) t",
            (eve.id, ids),
        )
        conn.execute(
            "update ticket_sla set first_response_due_at = now() + interval '3 hours'"
            " where ticket_id = any(%s::uuid[])",
            (ids,),
        )
    driver.execute_cdp_cmd("Network.enable", {})
    sign_in(driver, app, agent.email, agent.password)
    WebDriverWait(driver, 120).until(lambda d: len(_ids(d, ROWS)) == 3)
    # the due times come with the sync too (ticket_sla): the shell of the next load draws what the cache holds
    WebDriverWait(driver, 120).until(lambda d: len(d.find_elements("css selector", f"{ROWS} .sc-sla")) == 3)
    # the list keeps where it sits for the next load's shell
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return localStorage.getItem('sc-inbox-rect')"))
    live = _ids(driver, ROWS)
    live_top = driver.execute_script(f"return document.querySelector('{ROWS}').getBoundingClientRect().top")

    _blocked_load(driver, app)
    assert not driver.find_elements("css selector", ROWS), "the app mounted although its script was blocked"
    assert _ids(driver, SHELL_ROWS) == live  # the same tickets, in the same order
    subjects = driver.execute_script(
        f"return [...document.querySelectorAll('{SHELL_ROWS} .sc-row-subject')].map(e => e.textContent)"
    )
    assert HOSTILE_SUBJECT in subjects and "Printer on fire" in subjects
    previews = driver.execute_script(
        f"return [...document.querySelectorAll('{SHELL_ROWS} .sc-row-preview')].map(e => e.textContent)"
    )
    assert all(p.startswith(HOSTILE_NAME + " · ") for p in previews)
    assert driver.execute_script("return window.scPwned === undefined")
    assert not driver.find_elements("css selector", "#sc-inbox-shell img, #sc-inbox-shell script, #sc-inbox-shell b")
    badges = driver.find_elements("css selector", f"{SHELL_ROWS} .sc-sla")
    states = [b.get_attribute("data-state") for b in badges]
    assert states == ["ok"] * 3 and all(b.is_displayed() for b in badges), states
    shell_top = driver.execute_script(f"return document.querySelector('{SHELL_ROWS}').getBoundingClientRect().top")
    assert abs(shell_top - live_top) <= 2, f"the rows would jump: shell at {shell_top}, list at {live_top}"
    assert not driver.execute_script("return document.body.classList.contains('body--dark')")
    assert driver.execute_script(  # the stylesheet the parser waits for while the rows paint (behind the launch guard)
        "return performance.getEntriesByType('resource')"
        ".some(r => r.name.endsWith('/_sc/shell-paint.css') && r.responseStatus === 200)"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / "inbox-shell-light.png"))
    # the first chunk holds none of the framework's stylesheets (they follow the rows): the shell brings the few
    # rules its rows use (components/shell_base.py), and is drawn the same without the framework's as with them
    for _ in range(3):  # a pair of loads within one minute: an age or a badge ticking on changes its width
        _blocked_load(driver, app)
        drawn = driver.execute_script(DRAWN_JS)
        _blocked_load(driver, app, FRAMEWORK_CSS)
        again = driver.execute_script(DRAWN_JS)
        if again[0] == drawn[0]:
            break
    assert _ids(driver, SHELL_ROWS) == live
    assert again == drawn

    # the app mounts: the shell is gone in the same task, the live rows are the ones it showed
    _live_load(driver, app, 3)
    assert not driver.find_elements("css selector", "#sc-inbox-shell")
    assert _ids(driver, ROWS) == live
    # the framework's stylesheets came after the shell, its cascade as ever: the header as tall as the shell's
    header = driver.execute_script("return document.querySelector('.q-header').getBoundingClientRect().height")
    assert abs(header - inbox_shell.HEADER_PX) <= 1, f"the page's layout changed: header {header} px"
    driver.save_screenshot(str(SHOTS / "inbox-mounted-light.png"))

    # dark mode: the shell follows the saved setting before Quasar starts
    click(driver, "[data-testid=dark-toggle]")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.classList.contains('body--dark')"))
    _blocked_load(driver, app)
    assert _ids(driver, SHELL_ROWS) == live
    assert driver.execute_script("return document.body.classList.contains('body--dark')")
    panel = driver.execute_script(
        "return getComputedStyle(document.querySelector('#sc-inbox-shell .sc-shell-pane')).backgroundColor"
    )
    assert panel == "rgb(27, 31, 39)"  # --sc-panel in dark mode (theme.py)
    driver.save_screenshot(str(SHOTS / "inbox-shell-dark.png"))
    _live_load(driver, app, 3)
    assert not driver.find_elements("css selector", "#sc-inbox-shell")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.classList.contains('body--dark')"))
    driver.save_screenshot(str(SHOTS / "inbox-mounted-dark.png"))


def test_a_sidebar_click_draws_the_prefetched_rows_at_once_and_the_servers_rows_win(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")
    customer = create_user(stack.db_url, "customer")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ids = [
            str(
                conn.execute(
                    "insert into tickets (customer_id, assignee_id, subject, priority) values (%s, %s, %s, %s)"
                    " returning id",
                    (customer.id, agent.id, f"Ticket {i}", "urgent" if i == 1 else "normal"),
                ).fetchone()[0]  # type: ignore[index]
            )
            for i in range(3)
        ]
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) select t, %s, 'hello' from unnest(%s::uuid[]) t",
            (customer.id, ids),
        )
        conn.execute(
            "insert into saved_views (owner_id, name, filters) values (%s, 'Urgent', %s)",
            (agent.id, Jsonb({"view": "mine", "priorities": ["urgent"]})),
        )
    sign_in(driver, app, agent.email, agent.password)
    WebDriverWait(driver, 120).until(lambda d: len(_ids(d, ROWS)) == 3)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=view-Urgent]"))
    key = driver.find_element(By.CSS_SELECTOR, "[data-testid=view-Urgent]").get_attribute("data-sc-entry")
    assert key is not None and key.startswith("view:")  # a saved view's entry is keyed by its id, not its name
    prefetched = "return (window.scInboxPrefetch?.[arguments[0]] || []).map(r => r.id)"
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(prefetched, key) == [ids[1]])
    # a prediction the server does not share: the click draws it at once, then the server's rows replace it (kept
    # in every list the server sends before the click: the lists are recomputed when a late sync changed a row)
    driver.execute_script(
        """
        const key = arguments[0];
        const tamper = (lists) => {
          if (lists && Object.hasOwn(lists, key) && lists[key].length)
            lists[key] = [{ ...lists[key][0], id: 'predicted', subject: 'Predicted row' }];
          return lists;
        };
        let held = tamper(window.scInboxPrefetch);
        Object.defineProperty(window, 'scInboxPrefetch', {
          configurable: true, get: () => held, set: (lists) => { held = tamper(lists); },
        });
        window.scSeen = [];
        const list = document.querySelector('[data-testid=inbox-list]');
        const ids = () => [...list.querySelectorAll('[data-testid=ticket-row]')].map(r => r.dataset.ticketId).join();
        let last = ids();
        new MutationObserver(() => { const now = ids(); if (now !== last) window.scSeen.push(last = now); })
          .observe(list, { childList: true, subtree: true });
        """,
        key,
    )
    click(driver, "[data-testid=view-Urgent]")
    WebDriverWait(driver, 60).until(lambda d: _ids(d, ROWS) == [ids[1]])
    seen = driver.execute_script("return window.scSeen")
    assert seen[0] == "predicted", seen  # the first change the list made was the prefetched rows, at the click
    assert seen[-1] == ids[1]  # and the server's rows won
    # back to the Inbox: its prefetched rows are the server's
    click(driver, "[data-testid=view-inbox]")
    WebDriverWait(driver, 60).until(lambda d: set(_ids(d, ROWS)) == set(ids))


# each shell row: its top, whether its contents were skipped (content-visibility: hidden), its subject's width
BELOW_JS = """
return [...document.querySelectorAll('[data-testid=shell-row]')].map((r) => [r.getBoundingClientRect().top,
  getComputedStyle(r).contentVisibility === 'hidden',
  r.querySelector('.sc-row-subject').getBoundingClientRect().width]);
"""


def test_the_shell_lays_out_only_the_rows_in_the_window(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    """The shell's rows below the window skip layout and paint (they cannot show) until the window grows; every row
    in the window is drawn."""
    agent = create_user(stack.db_url, "agent")
    customer = create_user(stack.db_url, "customer")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ids = [
            str(r[0])
            for r in conn.execute(
                "insert into tickets (customer_id, assignee_id, subject) select %s, %s, 'Ticket ' || g"
                " from generate_series(1, 20) g returning id",
                (customer.id, agent.id),
            )
        ]
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) select t, %s, 'hello' from unnest(%s::uuid[]) t",
            (customer.id, ids),
        )
    driver.execute_cdp_cmd("Network.enable", {})
    sign_in(driver, app, agent.email, agent.password)
    WebDriverWait(driver, 120).until(lambda d: len(_ids(d, ROWS)) == 20)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return localStorage.getItem('sc-inbox-rect')"))
    live = _ids(driver, ROWS)

    _blocked_load(driver, app)
    assert _ids(driver, SHELL_ROWS) == live  # all 20 rows are there, in the list's order
    height = driver.execute_script("return innerHeight")
    rows = driver.execute_script(BELOW_JS)
    shown = [(top, width) for top, hidden, width in rows if not hidden]
    skipped = [top for top, hidden, _ in rows if hidden]
    assert skipped, "every row was laid out, also those below the window"
    assert all(top >= height for top in skipped), (height, rows)  # none that the window shows
    assert all(width > 0 for _, width in shown)  # the rows in the window are drawn
    assert any(top < height for top, _ in shown) and shown[-1][0] < height + 200, (height, rows)

    driver.set_window_size(1400, 2400)  # the window grows before the app started: every row is drawn
    WebDriverWait(driver, 10).until(lambda d: not any(hidden for _, hidden, _ in d.execute_script(BELOW_JS)))

    # a tampered store (the shell's top saved as a string) still lays out the rows the window shows: the string
    # used to be concatenated into every media query, which then matched nothing and hid every row
    driver.set_window_size(1400, 900)
    driver.execute_script(
        "const k='sc-inbox-rect';const r=JSON.parse(localStorage.getItem(k));r.top=String(r.top);"
        "localStorage.setItem(k,JSON.stringify(r));"
    )
    _blocked_load(driver, app)
    rows = driver.execute_script(BELOW_JS)
    assert any(not hidden for _, hidden, _ in rows), rows
