"""A ticket that becomes visible to an agent (reassigned to them, or released to everyone) arrives with its tags and
its SLA row, not only its thread. They were written while the agent could not see the ticket, so their rows lie
below the agent's cursors (and the horizons a quiet pull moves them to), and a reassignment writes neither again:
before, the agent never saw the tags or the SLA badge of exactly the tickets handed over to them (attacker's
review, thirteenth session).
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

pytestmark = pytest.mark.timeout(120)


async def test_a_reassigned_ticket_comes_with_its_tags_and_sla(stack: StackProcess, engines: EngineFactory) -> None:
    customer, before, after = (create_user(stack.db_url, r) for r in ("customer", "agent", "agent"))
    own = seed_ticket(stack.db_url, customer, after, messages=[(customer, "mine")])
    theirs = seed_ticket(stack.db_url, customer, before, messages=[(customer, "handed over")])
    engine = await engines.open(after)
    await engine.sync_once()
    name = f"vip {uuid.uuid4().hex[:8]}"
    tag = str(sql(stack.db_url, "insert into public.tags (name) values (%s) returning id", name)[0][0])
    await engine.sync_once()  # the tag itself arrives
    sql(stack.db_url, "insert into public.ticket_tags (ticket_id, tag_id) values (%s, %s)", theirs, tag)
    await engine.sync_once()  # nothing this agent may see: the horizon moves past the tag's row
    assert not engine.cache.has_ticket(theirs)
    later = f"later {uuid.uuid4().hex[:8]}"  # an unrelated tag row after it: the cursor moves past it too
    sql(
        stack.db_url,
        "insert into public.ticket_tags (ticket_id, tag_id) select %s, id from public.tags where name = %s",
        own,
        str(sql(stack.db_url, "insert into public.tags (name) values (%s) returning name", later)[0][0]),
    )
    await engine.sync_once()

    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", after.id, theirs)
    await engine.sync_once()

    assert [m.content for m in engine.cache.thread(theirs)] == ["handed over"]
    assert [t.name for t in engine.workspace.tags_of([theirs]).get(theirs, [])] == [name]
    server_sla = sql(stack.db_url, "select count(*) from public.ticket_sla where ticket_id = %s", theirs)[0][0]
    cached_sla = [r for r in engine.cache.workspace.rows("ticket_sla") if r["ticket_id"] == theirs]
    assert server_sla == 1 and len(cached_sla) == 1


async def test_a_deleted_notes_mention_leaves_the_mentioned_agents_cache(
    stack: StackProcess, engines: EngineFactory
) -> None:
    """The server deletes a note's mentions with its text; the mentioned agent's cache kept the mention, unseen, so
    the Mentions view and its badge pointed at a deleted note forever (attacker's review, thirteenth session)."""
    customer, author, mentioned = (create_user(stack.db_url, r) for r in ("customer", "admin", "agent"))
    ticket = seed_ticket(stack.db_url, customer, None, messages=[(customer, "help")])
    writer, reader = await engines.open(author), await engines.open(mentioned)
    await writer.sync_once()
    note = writer.commands.send_message(ticket, f"@[{mentioned.name}]({mentioned.id}) have a look", internal=True)
    await writer.sync_once()
    await reader.sync_once()
    assert [m.message_id for m in reader.workspace.mentions(unseen_only=True)] == [note.id]
    writer.history.delete_message(note.id)
    await writer.sync_once()
    assert sql(stack.db_url, "select count(*) from public.mentions where message_id = %s", note.id) == [(0,)]
    await reader.sync_once()
    assert reader.workspace.mentions() == []
