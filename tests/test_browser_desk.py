"""The agent workspace in a real browser (issue 14): `/` typed into an empty composer opens the canned-reply
picker (the browser's own key handler, which the simulated user cannot run), typing filters it, Enter asks
for the fill-in field and Enter inserts the filled reply; the inbox shows tag chips and SLA badges that count
down in the page. Saves artifacts/desk-{inbox,picker}-{light,dark}.png to look at (docs/screenshots/ keeps
the reviewed copies).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import User, Users, create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import ARTIFACTS, REDRAWN, act, click, css, driver, sign_in, until_element

pytestmark = pytest.mark.browser
uses_driver = driver

TAGS = {"Billing": "#2563eb", "Bug": "#dc2626", "VIP": "#f59e0b", "Refund": "#16a34a", "Onboarding": "#7c3aed"}
TICKETS = [  # subject, priority, tags, minutes until the first response is due, customer's words
    ("Charged twice for the March invoice", "urgent", ["Billing", "VIP"], -12, "I see two charges of $49."),
    ("Export to CSV does nothing", "high", ["Bug"], 9, "The button spins forever."),
    ("Refund for the annual plan", "normal", ["Refund", "Billing"], 95, "We switched providers."),
    ("How do I invite my team?", "low", ["Onboarding"], 600, "Where is the invite button?"),
    ("Dark mode looks washed out", "normal", [], 240, "Text is grey on grey."),
]


@pytest.fixture
def desk(stack: StackProcess) -> dict[str, str]:
    """A fresh agent with a few tagged tickets whose SLA deadlines are spread from overdue to hours ahead."""
    suffix = uuid.uuid4().hex[:4]
    agent: User = create_user(stack.db_url, "agent", "Dana Diaz")
    customers = [
        create_user(stack.db_url, "customer", name)
        for name in ("Maya Lopez", "Tom Becker", "Aiko Tanaka", "Liam O'Neil", "Sara Costa")
    ]
    ids: dict[str, str] = {"agent_email": agent.email, "agent_password": agent.password}
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        tag_ids = {}
        for name, color in TAGS.items():
            conn.execute(
                "insert into tags (name, color) values (%s, %s) on conflict (lower(name))"
                " where deleted_at is null do nothing",
                (name, color),
            )
            tag_ids[name] = str(
                conn.execute("select id from tags where name = %s and deleted_at is null", (name,)).fetchone()[0]
            )  # type: ignore[index]
        for (subject, priority, tags, due, words), customer in zip(TICKETS, customers, strict=True):
            tid = str(
                conn.execute(
                    "insert into tickets (customer_id, assignee_id, subject, priority) values"
                    " (%s, %s, %s, %s) returning id",
                    (customer.id, agent.id, subject, priority),
                ).fetchone()[0]
            )  # type: ignore[index]
            conn.execute(
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)", (tid, customer.id, words)
            )
            for tag in tags:
                conn.execute("insert into ticket_tags (ticket_id, tag_id) values (%s, %s)", (tid, tag_ids[tag]))
            with conn.transaction():  # opened two hours ago (the guard would keep created_at: triggers off)
                conn.execute("set local session_replication_role = replica")
                conn.execute("update tickets set created_at = now() - interval '2 hours' where id = %s", (tid,))
            conn.execute(
                "update ticket_sla set first_response_due_at = now() + make_interval(mins => %s) where ticket_id = %s",
                (due, tid),
            )
            ids.setdefault("first", tid)
        for title, body in (
            (
                f"Refund issued {suffix}",
                "Hi {{customer.first_name|there}}, we refunded order {{order number}}."
                " It shows on your statement within 5 days. — {{agent.first_name}}",
            ),
            (f"Refund policy {suffix}", "Annual plans are refundable within 30 days of purchase."),
            (f"Password reset link {suffix}", "You can reset your password from the sign-in page."),
            (f"Shipping delay apology {suffix}", "Sorry {{customer.first_name|}}, your parcel is delayed."),
        ):
            conn.execute("insert into canned_replies (title, body) values (%s, %s)", (title, body))
        conn.execute(
            "insert into saved_views (owner_id, name, filters, sort) values (%s, 'VIP customers', %s, 'sla_due_asc')",
            (agent.id, Jsonb({"view": "mine", "tags": [tag_ids["VIP"]]})),
        )
    ids["suffix"] = suffix
    return ids


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


def test_slash_picker_and_inbox_badges_in_chromium(
    app: AppProcess, driver: WebDriver, desk: dict[str, str], users: Users
) -> None:
    del users
    sign_in(driver, app, desk["agent_email"], desk["agent_password"])
    ticket = desk["first"]
    click(driver, f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]')
    until_element(
        driver,
        css(f'[data-testid=ticket-pane][data-ticket-id="{ticket}"] [data-testid=tag-editor]'),
        lambda e: e.is_displayed(),
    )
    until_element(driver, css("[data-testid=ticket-row] .sc-sla-breached"), lambda e: e.is_displayed())
    until_element(driver, css('[data-testid=ticket-row] [data-testid=tag][data-tag="VIP"]'), lambda e: e.is_displayed())
    # the badge counts down in the browser: its text moves without a server round trip
    until_element(
        driver, css("[data-testid=ticket-row] .sc-sla-breached .sc-sla-text"), lambda e: e.text.startswith("overdue")
    )
    shoot(driver, "inbox-light")
    # the saved view (VIP tag, SLA order) in the sidebar filters the list in place
    rows = "[data-testid=ticket-row]"
    click(driver, '[data-testid="view-VIP customers"]')
    WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(*css(rows))) == 1)
    click(driver, '[data-testid="view-inbox"]')
    WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(*css(rows))) == len(TICKETS))

    composer = css("textarea[data-testid=composer]")
    act(driver, composer, lambda e: e.send_keys("/"))
    until_element(driver, css("input[data-testid=canned-query]"), lambda e: e.is_displayed())
    act(driver, css("input[data-testid=canned-query]"), lambda e: e.send_keys(f"refnd issd {desk['suffix']}"))
    until_element(driver, css("[data-testid=canned-item]"), lambda e: f"Refund issued {desk['suffix']}" in e.text)
    shoot(driver, "picker-light")
    act(driver, css("input[data-testid=canned-query]"), lambda e: e.send_keys(Keys.ENTER))
    act(driver, css("input[data-field='order number']"), lambda e: e.send_keys("A-1042", Keys.ENTER))
    until_element(
        driver, composer, lambda e: (e.get_attribute("value") or "").startswith("Hi Maya, we refunded order A-1042.")
    )
    assert "/" not in (driver.find_element(*composer).get_attribute("value") or "")[:1]  # the slash was not typed

    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    act(driver, composer, lambda e: e.send_keys(Keys.CONTROL, "a", Keys.CONTROL, Keys.DELETE))
    until_element(driver, composer, lambda e: not e.get_attribute("value"))
    act(driver, composer, lambda e: e.send_keys("/"))
    until_element(driver, css("input[data-testid=canned-query]"), lambda e: e.is_displayed())
    act(driver, css("input[data-testid=canned-query]"), lambda e: e.send_keys(f"refund {desk['suffix']}"))
    until_element(driver, css("[data-testid=canned-item]"), lambda e: desk["suffix"] in e.text)
    shoot(driver, "picker-dark")
    act(driver, css("input[data-testid=canned-query]"), lambda e: e.send_keys(Keys.ESCAPE))
    WebDriverWait(driver, 30, ignored_exceptions=REDRAWN).until(
        lambda d: not any(e.is_displayed() for e in d.find_elements(*css("input[data-testid=canned-query]")))
    )
    until_element(driver, css("[data-testid=ticket-row] .sc-sla-breached"), lambda e: e.is_displayed())
    shoot(driver, "inbox-dark")
