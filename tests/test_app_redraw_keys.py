"""A new message redraws only what it changes (components/pane_keys.py, components/context_panel.py), through
NiceGUI's simulated `User` on the real stack, with fresh users and tickets:

- the customer's ticket header and footer keep their elements when another message arrives (they used to be
  deleted and made again on every message: ~25 of the ~55 elements the page got with a new bubble);
- the agent's context panel is not rebuilt by a message in the open ticket, so a note being typed into it
  survives (the rebuild made a new, empty note input);
- but a renamed note author is in its redraw key, so the new name shows at the next message.
"""

from __future__ import annotations

import time
from pathlib import Path

from nicegui import ui

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import sql


def _elements_marked(user: object, marker: str) -> list[object]:
    with user:  # type: ignore[attr-defined]
        return [e for e in ui.context.client.elements.values() if marker in getattr(e, "_markers", [])]


def _post(db_url: str, ticket_id: str, sender_id: str, text: str) -> None:
    sql(
        db_url,
        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
        ticket_id,
        sender_id,
        text,
    )


async def test_a_new_message_keeps_the_customers_header_elements(app_data: Path, stack: StackProcess) -> None:
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    stamp = time.time_ns()
    tid = seed_ticket(stack.db_url, customer, agent, f"Header {stamp}", [(customer, f"first {stamp}", False)])
    async with running_app() as user:
        await sign_in(user, customer)
        await user.open(f"/?t={tid}")
        await user.should_see(f"first {stamp}", retries=WAIT)
        [subject] = _elements_marked(user, "ticket-subject")
        for i in range(2):  # the second one too: the first may still find the header drawn before a late pull
            _post(stack.db_url, tid, agent.id, f"reply {i} {stamp}")
            await eventually(lambda i=i: bubble_with(user, f"reply {i} {stamp}") is not None, "the agent's reply", 60)
        await eventually(
            lambda: sql(stack.db_url, "select count(*) from public.messages where ticket_id = %s", tid) == [(3,)],
            "three messages on the server",
        )
        assert _elements_marked(user, "ticket-subject") == [subject]
        assert not subject.is_deleted  # type: ignore[attr-defined]


async def test_a_message_in_the_open_ticket_keeps_a_note_being_typed(app_data: Path, stack: StackProcess) -> None:
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    stamp = time.time_ns()
    tid = seed_ticket(stack.db_url, customer, agent, f"Panel {stamp}", [(customer, f"hello {stamp}", False)])
    async with running_app() as user:
        await sign_in(user, agent)
        await user.open(f"/?t={tid}")
        await user.should_see(marker="context-note-input", retries=WAIT)
        await user.should_see(f"hello {stamp}", retries=WAIT)
        half = f"half a note {stamp}"
        user.find(marker="context-note-input").type(half)
        _post(stack.db_url, tid, customer.id, f"more {stamp}")
        await eventually(lambda: bubble_with(user, f"more {stamp}") is not None, "the customer's message", 60)
        [note_input] = _elements_marked(user, "context-note-input")
        assert note_input.value == half  # type: ignore[attr-defined]


async def test_a_renamed_note_author_shows_at_the_next_message(app_data: Path, stack: StackProcess) -> None:
    """The panel's redraw key holds the notes' authors' names: a rename changes no note, so without them the
    panel kept the old name until the notes themselves changed (found by the sixth session's review)."""
    customer, agent, colleague = (create_user(stack.db_url, r) for r in ("customer", "agent", "agent"))
    stamp = time.time_ns()
    tid = seed_ticket(stack.db_url, customer, agent, f"Rename {stamp}", [(customer, f"hi {stamp}", False)])
    sql(
        stack.db_url,
        "insert into public.customer_notes (customer_id, author_id, body) values (%s, %s, %s)",
        customer.id,
        colleague.id,
        f"note {stamp}",
    )
    before = sql(stack.db_url, "select display_name from public.profiles where id = %s", colleague.id)[0][0]
    async with running_app() as user:
        await sign_in(user, agent)
        await user.open(f"/?t={tid}")
        await user.should_see(f"note {stamp}", retries=WAIT)
        await user.should_see(f"{before} ·", retries=WAIT)
        renamed = f"Renamed {stamp}"
        sql(stack.db_url, "update public.profiles set display_name = %s where id = %s", renamed, colleague.id)
        await eventually(
            lambda: engine_of(user).cache.profiles()[colleague.id].display_name == renamed,
            "the rename in the cache",
            60,
        )
        _post(stack.db_url, tid, customer.id, f"next {stamp}")
        await eventually(lambda: bubble_with(user, f"next {stamp}") is not None, "the customer's message", 60)
        await user.should_see(f"{renamed} ·", retries=WAIT)


async def test_a_note_being_typed_survives_a_redraw_of_the_panel(app_data: Path, stack: StackProcess) -> None:
    """What the panel draws from the cache is redrawn on its own (components/context_panel.py): another agent's
    note redraws the notes, and the input being typed into is the same element, text kept (it was made again,
    empty, with every redraw; the minute in "5 min ago" changing was enough)."""
    customer, agent, colleague = (create_user(stack.db_url, r) for r in ("customer", "agent", "agent"))
    stamp = time.time_ns()
    tid = seed_ticket(stack.db_url, customer, agent, f"Typing a note {stamp}", [(customer, f"hi {stamp}", False)])
    async with running_app() as user:
        await sign_in(user, agent)
        await user.open(f"/?t={tid}")
        await user.should_see(marker="context-note-input", retries=WAIT)
        await user.should_see(f"hi {stamp}", retries=WAIT)
        [note_input] = _elements_marked(user, "context-note-input")
        half = f"half a note {stamp}"
        user.find(marker="context-note-input").type(half)
        sql(
            stack.db_url,
            "insert into public.customer_notes (customer_id, author_id, body) values (%s, %s, %s)",
            customer.id,
            colleague.id,
            f"colleague's note {stamp}",
        )
        await user.should_see(f"colleague's note {stamp}", retries=WAIT)
        assert _elements_marked(user, "context-note-input") == [note_input]
        assert note_input.value == half  # type: ignore[attr-defined]
        user.find(marker="context-note-add").click()  # adding still works, and empties the input
        await user.should_see(half, retries=WAIT)
        assert note_input.value == ""  # type: ignore[attr-defined]
