"""Defects found walking through the real app as its agents, admins and customers use it, each pinned by the
simulated user (NiceGUI's `user` fixture) against the real localbase and sync engine."""

from __future__ import annotations

import uuid
from pathlib import Path

from nicegui import ui

from supportchat_app.components.dialogs import ShortcutSheet
from tests.conftest import create_user
from tests.helpers import eventually
from tests.inbox import row_of, rows_of
from tests.stackproc import StackProcess
from tests.test_app_bulk import apply_from_palette, new_macro
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    engine_of,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import sql


async def test_empty_side_says_pick_a_ticket_once_the_inbox_has_tickets(app_data: Path, stack: StackProcess) -> None:
    """The right side drawn while the inbox was empty said "No tickets yet" beside the tickets that arrived after
    it (the first sync, a new ticket live): it follows the inbox now."""
    agent = create_user(stack.db_url, "agent", "Nina Newcomer")
    customer = create_user(stack.db_url, "customer", "Carl Customer")
    async with running_app() as user:
        await sign_in(user, agent)
        await user.should_see("No tickets yet", retries=WAIT)
        seed_ticket(stack.db_url, customer, agent, "Printer on fire")
        await user.should_see("Printer on fire", retries=WAIT)
        await user.should_see("Pick a ticket on the left", retries=WAIT)
        await user.should_not_see("No tickets yet")


async def test_a_new_tag_stops_waiting_to_sync_and_a_taken_name_is_not_a_retry(
    app_data: Path, stack: StackProcess
) -> None:
    """On the desk settings a new tag kept its "waiting to sync" mark after the server took it (the list was
    drawn only when the admin added or removed a tag); and a name already taken said "Please try again; if it
    keeps happening, check Settings", which would not help. The list follows the outbox now, and refused
    input says only what is wrong."""
    admin = create_user(stack.db_url, "admin", "Ada Walkthrough")
    name = f"billing-{uuid.uuid4().hex[:6]}"
    async with running_app() as user:
        await sign_in(user, admin)
        await user.open("/desk-settings")
        await user.should_see(marker="tag-add", retries=WAIT)
        user.find(marker="tag-name").type(name)
        user.find(marker="tag-add").click()
        await user.should_see(name, retries=WAIT)
        await eventually(lambda: sql(stack.db_url, "select count(*) from tags where name = %s", name) == [(1,)], "push")
        await user.should_not_see(marker="tag-pending", retries=WAIT)

        user.find(marker="tag-name").type(name)
        user.find(marker="tag-add").click()
        await eventually(lambda: user.notify.contains("already"), "the refusal")
        refusal = next(m for m in user.notify.messages if "already" in m)
        assert refusal == f"Could not add the tag: there is a tag named {name!r} already."


async def test_a_macro_reply_fills_its_variables_for_the_ticket(app_data: Path, stack: StackProcess) -> None:
    """A macro's reply went to the customer as written, "Thanks {{customer.first_name}}, ..." with the braces;
    it is filled for each ticket like a canned reply (a fill-in field, which no one is asked for when a macro
    runs, takes its fallback)."""
    agent = create_user(stack.db_url, "agent", "Alex Agent")
    customer = create_user(stack.db_url, "customer", "Wanda Walker")
    tid = seed_ticket(stack.db_url, customer, agent, "Refund?", [(customer, "any news?", False)])
    stamp = uuid.uuid4().hex[:6]
    body = "Thanks {{customer.first_name|there}}, ticket {{ticket.id}} is with billing. {{agent.name}} {{order|-}}"
    macro_id = new_macro(stack.db_url, f"Billing {stamp}", body, {"priority": "high"})
    async with running_app() as user:
        await sign_in(user, agent)
        await apply_from_palette(user, macro_id, tid, f"macro billing {stamp}", f"Billing {stamp}")
        expected = f"Thanks Wanda, ticket {tid[:8]} is with billing. Alex Agent -"
        await eventually(
            lambda: (
                sql(stack.db_url, "select content from messages where ticket_id = %s and sender_id = %s", tid, agent.id)
                == [(expected,)]
            ),
            "the filled reply on the server",
            60,
        )


async def test_inbox_preview_shows_a_mention_as_a_name(app_data: Path, stack: StackProcess) -> None:
    """A note mentioning a teammate showed in the inbox row's preview as its markup, "Asking @[Bob Agent](2d4a…";
    the row (and the customer panel, and the desktop notification) show "@Bob Agent" as the bubble does."""
    agent = create_user(stack.db_url, "agent", "Alice Mentioner")
    bob = create_user(stack.db_url, "agent", "Bob Mentioned")
    customer = create_user(stack.db_url, "customer", "Carol Customer")
    note = f"Asking @[Bob Mentioned]({bob.id}) to check the refund"
    tid = seed_ticket(stack.db_url, customer, agent, "Refund twice", [(customer, "hi", False), (agent, note, True)])
    async with running_app() as user:
        await sign_in(user, agent)
        await eventually(lambda: tid in rows_of(user), "the row")
        assert row_of(user, tid)["preview"] == "Asking @Bob Mentioned to check the refund"


async def test_the_team_page_has_the_account_menu(app_data: Path, stack: StackProcess) -> None:
    """The Team page (from the account menu) was the one signed-in page without the account button in its
    header, so the way on to the other pages (or Sign out) was only Back."""
    admin = create_user(stack.db_url, "admin", "Ada Teamlead")
    async with running_app() as user:
        await sign_in(user, admin)
        await user.open("/invite")
        await user.should_see("Invite a teammate", retries=WAIT)
        await user.should_see(marker="account")
        await user.should_see("Ada Teamlead")


async def test_the_settings_page_has_the_account_menu_when_signed_in(app_data: Path, stack: StackProcess) -> None:
    """ux14's walkthrough: Settings was the other page without the account button in its header. Signed in it
    has it (the way on to Profile, Canned replies, ...); signed out (Settings is reachable from sign-in) it has none."""
    agent = create_user(stack.db_url, "agent", "Sid Settings")
    async with running_app() as user:
        await user.open("/settings")
        await user.should_see(marker="current-server", retries=WAIT)
        await user.should_not_see(marker="account")
        await sign_in(user, agent)
        await user.open("/settings")
        await user.should_see(marker="current-server", retries=WAIT)
        await user.should_see(marker="account")
        await user.should_see("Sid Settings")


async def test_the_shortcut_sheet_names_the_edit_keys_and_closes_in_the_apps_words(
    app_data: Path, stack: StackProcess
) -> None:
    """The `?` sheet left out the keys of an edit in place (Enter saves, Esc cancels), and its button said
    "CLOSE" in capitals where every other button of the app keeps its case."""
    agent = create_user(stack.db_url, "agent", "Kim Keys")
    async with running_app() as user:
        await sign_in(user, agent)
        with user:
            (sheet,) = [e for e in ui.context.client.elements.values() if isinstance(e, ShortcutSheet)]
        sheet.open()
        await user.should_see("Send (or save the message you are editing)")
        await user.should_see("Close a dialog, cancel an edit")
        (close,) = user.find(marker="close-shortcuts").elements
        assert "no-caps" in close.props


async def test_the_account_menu_signs_out_from_every_signed_in_page(app_data: Path, stack: StackProcess) -> None:
    """The account menu had "Sign out" on the workspace only: on Profile, Settings, Team, Canned replies and
    Macros the menu ended without it, and the way out was back to the inbox first."""
    agent = create_user(stack.db_url, "agent", "Olga Out")
    async with running_app() as user:
        await sign_in(user, agent)
        await user.open("/profile")
        await user.should_see(marker="account", retries=WAIT)
        user.find(marker="account").click()
        user.find(marker="sign-out").click()
        await eventually(lambda: engine_of(user).user is None, "signed out")
        await user.should_see(marker="signin", retries=WAIT)


async def test_the_new_ticket_dialog_keeps_the_case_of_its_buttons(app_data: Path, stack: StackProcess) -> None:
    """A customer's New ticket dialog said "CANCEL" and "CREATE TICKET" (Quasar's default capitals) where every
    other button of the app, the "New ticket" button that opens it included, keeps its case."""
    customer = create_user(stack.db_url, "customer", "Cleo Caps")
    async with running_app() as user:
        await sign_in(user, customer)
        await user.should_see(marker="new-ticket", retries=WAIT)
        user.find(marker="new-ticket").click()
        await user.should_see(marker="create-ticket", retries=WAIT)
        for marker in ("new-ticket", "cancel-ticket", "create-ticket"):
            (button,) = user.find(marker=marker).elements
            assert "no-caps" in button.props, marker


async def test_every_button_keeps_its_case(app_data: Path, stack: StackProcess) -> None:
    """The sign-in page's "Sign in" showed as "SIGN IN" and the two-step step's "Verify" as "VERIFY" (Quasar's
    default capitals), as did every button not marked one by one: the app sets no-caps for all of them."""
    async with running_app() as user:
        await user.open("/")
        await user.should_see(marker="signin", retries=WAIT)
        with user:
            buttons = [e for e in ui.context.client.elements.values() if isinstance(e, ui.button)]
        assert buttons and all("no-caps" in b.props for b in buttons), [b.text for b in buttons]
