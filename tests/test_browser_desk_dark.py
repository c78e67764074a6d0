"""Dark mode in a real browser for the parts of the agent workspace that had light leftovers (issue 14): the
composer's Reply / Internal note toggle follows the theme (its idle half was a light grey in dark mode), and
the desk settings' business hours with an inbox badge paused outside them, and a canned reply's file on the
canned replies page. Saves artifacts/desk-{composer-note,hours,canned-files}-{light,dark}.png to look at
(docs/screenshots/ keeps reviewed copies).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from supabase import ClientOptions, create_client

from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import ARTIFACTS, REDRAWN, click, css, driver, sign_in, until_element
from tests.test_sla_calendar import calendar
from tests.test_sync_support import sql

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
]
PDF = b"%PDF-1.4 VAT correction form"
uses_driver = driver
uses_calendar = calendar

# the background an idle toggle button shows: its own, else the toggle's, else the page's (as 0-255 luminance)
IDLE_LUMINANCE_JS = """
const toggle = document.querySelector('[data-testid=composer-mode]');
const paint = (el) => {
  for (; el; el = el.parentElement) {
    const m = getComputedStyle(el).backgroundColor.match(/[0-9.]+/g);
    if (m && (m.length < 4 || +m[3] > 0)) return 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2];
  }
  return 255;
};
return [...toggle.querySelectorAll('.q-btn')].filter((b) => b.getAttribute('aria-pressed') !== 'true').map(paint);
"""

LABEL_LUMINANCE_JS = """
const m = getComputedStyle(document.querySelector('[data-testid=view-snoozed]')).color.match(/[0-9.]+/g);
return 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2];
"""


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


def shoot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"desk-{name}.png"))


def idle_luminance(driver: WebDriver) -> list[float]:
    return list(driver.execute_script(IDLE_LUMINANCE_JS))


def test_note_toggle_follows_dark_mode_and_business_hours_read_in_both(
    app: AppProcess, driver: WebDriver, stack: StackProcess, calendar: None
) -> None:
    admin = create_user(stack.db_url, "admin", "Ava Admin")
    customer = create_user(stack.db_url, "customer", "Maya Lopez")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        ticket = str(
            conn.execute(
                "insert into tickets (customer_id, assignee_id, subject, priority) values (%s, %s,"
                " 'Invoice shows the wrong VAT number', 'high') returning id",
                (customer.id, admin.id),
            ).fetchone()[0]  # type: ignore[index]
        )
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'Our VAT number changed.')",
            (ticket, customer.id),
        )
        for day in range(1, 8):  # every day but today (UTC, the default zone): closed now, the badge is paused
            if day != datetime.now(UTC).isoweekday():
                conn.execute(
                    "insert into sla_business_hours (weekday, opens, closes) values (%s, '09:00', '12:30'),"
                    " (%s, '13:30', '17:30')",
                    (day, day),
                )
        conn.execute("insert into sla_holidays (day, name) values ('2031-12-25', 'Christmas Day')")
        reply = str(
            conn.execute(
                "insert into canned_replies (title, body) values ('VAT correction form',"
                " 'Please fill in the attached form and we correct the invoice.') returning id"
            ).fetchone()[0]  # type: ignore[index]
        )
    # a file on the shared canned reply, uploaded as the admin (Storage takes the owner from the token)
    as_admin = create_client(
        stack.api_url, stack.anon_key, ClientOptions(headers={"Authorization": f"Bearer {stack.mint(sub=admin.id)}"})
    )
    key = f"canned/{reply}/VAT correction form.pdf"
    as_admin.storage.from_("attachments").upload(key, PDF, {"content-type": "application/pdf"})
    sql(
        stack.db_url,
        "insert into canned_reply_files (canned_reply_id, uploader_id, name, sha256, object_path)"
        " values (%s, %s, 'VAT correction form.pdf', %s, %s)",
        reply,
        admin.id,
        hashlib.sha256(PDF).hexdigest(),
        key,
    )
    sign_in(driver, app, admin.email, admin.password)
    # an admin's first sync brings every earlier test's tickets (the full suite): wait for this one's row
    row = f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]'
    until_element(driver, css(row), lambda e: e.is_displayed(), timeout=180)
    click(driver, row)
    until_element(driver, css("[data-testid=composer-mode]"), lambda e: e.is_displayed())
    until_element(driver, css(f"{row} .sc-sla-paused"), lambda e: e.is_displayed(), timeout=180)

    def note_mode(d: WebDriver) -> bool:  # Internal note; clicked again if a redraw swallowed the click
        if "internal" in (d.find_element(*css("textarea[data-testid=composer]")).get_attribute("placeholder") or ""):
            return True
        d.find_element(*css("[data-testid=composer-mode] .q-btn:nth-child(2)")).click()
        return False

    WebDriverWait(driver, 60, poll_frequency=1.0, ignored_exceptions=REDRAWN).until(note_mode)
    WebDriverWait(driver, 30).until(lambda d: min(idle_luminance(d)) > 200)  # light: the idle half is light
    shoot(driver, "composer-note-light")
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    WebDriverWait(driver, 30).until(lambda d: max(idle_luminance(d)) < 80)  # dark: no light patch left
    # the screenshot after the theme's colour transitions have ended (the sidebar's labels are light again)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(LABEL_LUMINANCE_JS) > 150)
    shoot(driver, "composer-note-dark")

    driver.get(app.url + "/desk-settings")
    until_element(driver, css("[data-testid=hours-add]"), lambda e: e.is_displayed())
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    driver.execute_script("document.querySelector('[data-testid=hours-add]').scrollIntoView({block: 'center'})")
    shoot(driver, "hours-dark")
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" not in (e.get_attribute("class") or ""))
    driver.execute_script("document.querySelector('[data-testid=hours-add]').scrollIntoView({block: 'center'})")
    shoot(driver, "hours-light")

    # the canned replies page: the shared reply's file as a chip, with Attach and remove for the admin
    driver.get(app.url + "/canned")
    card = f'[data-reply-id="{reply}"]'
    chip = f"{card} .sc-file-chip"
    until_element(driver, css(chip), lambda e: "VAT correction form.pdf" in e.text, timeout=180)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", driver.find_element(*css(card)))
    shoot(driver, "canned-files-light")
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    until_element(driver, css(chip), lambda e: e.is_displayed())
    shoot(driver, "canned-files-dark")
