"""A new message's rules as one statement trigger (migration 20261210000100_message_insert_rules.sql), in the real
PostgreSQL:

- one AFTER INSERT statement trigger on messages (there were four), its function a security definer with an empty
  search_path that no API role may execute;
- one statement inserting several messages into two tickets (a customer's message on a pending ticket, a public staff
  reply mentioning an admin and an agent who may not open the ticket, an internal note mentioning its author and an
  agent, a customer's "mention", the customer's next message) leaves the ticket, outbox, mention and SLA rows the
  four triggers left: the rules of 20261129000520/20261129000530/20261129000540, each row named here;
- the SLA rows equal what `private.recompute_sla` computes afterwards, round the clock (the trigger's own arithmetic)
  and with business hours (the calendar walk).

Each case runs in a transaction that is rolled back: the shared database keeps nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import create_user
from tests.stackproc import StackProcess


def test_one_statement_trigger_owner_only(stack: StackProcess) -> None:
    with psycopg.connect(stack.db_url) as conn:
        rows = conn.execute(
            "select t.tgname::text, p.oid::regprocedure::text, p.prosecdef, p.proconfig,"
            " has_function_privilege('anon', p.oid, 'execute'),"
            " has_function_privilege('authenticated', p.oid, 'execute'),"
            " has_function_privilege('service_role', p.oid, 'execute')"
            " from pg_trigger t join pg_proc p on p.oid = t.tgfoid"
            " where t.tgrelid = 'public.messages'::regclass and not t.tgisinternal"
            " and (t.tgtype & 1) = 0 and (t.tgtype & 4) <> 0 and (t.tgtype & 2) = 0"  # statement, insert, after
        ).fetchall()
    fn = "private.messages_after_insert_rules()"
    assert rows == [("messages_after_insert", fn, True, ['search_path=""'], False, False, False)]


@pytest.mark.parametrize("business_hours", [False, True])
def test_several_messages_one_statement(stack: StackProcess, business_hours: bool) -> None:
    customer = create_user(stack.db_url, "customer")
    agent = create_user(stack.db_url, "agent")
    outsider = create_user(stack.db_url, "agent")
    admin = create_user(stack.db_url, "admin")
    with psycopg.connect(stack.db_url) as conn:  # the superuser: RLS aside, every trigger runs
        conn.execute("delete from public.sla_business_hours")  # rolled back with the rest
        if business_hours:
            conn.execute(
                "insert into public.sla_business_hours (weekday, opens, closes)"
                " select d, '09:00', '17:00' from generate_series(1, 5) d"
            )
        assigned, unassigned = (
            str(
                conn.execute(
                    "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, 'rules')"
                    " returning id",
                    (customer.id, assignee),
                ).fetchone()[0]  # type: ignore[index]
            )
            for assignee in (agent.id, None)
        )
        conn.execute("update public.tickets set status = 'pending' where id = %s", (assigned,))
        inserted = conn.execute(
            "insert into public.messages (ticket_id, sender_id, content, is_internal) values"
            " (%(a)s, %(c)s, 'hello', false),"
            " (%(a)s, %(g)s, 'hi, see @[Admin](' || %(d)s || ') and @[Other](' || %(o)s || ')', false),"
            " (%(u)s, %(g)s, 'note for @[Other](' || %(o)s || ') by @[Me](' || %(g)s || ')', true),"
            " (%(u)s, %(c)s, 'ping @[Agent](' || %(g)s || ')', false),"
            " (%(a)s, %(c)s, 'thanks', false)"
            " returning id::text, created_at",
            {"a": assigned, "u": unassigned, "c": customer.id, "g": agent.id, "o": outsider.id, "d": admin.id},
        ).fetchall()
        (asked, asked_at), (reply, reply_at), (note, note_at), (_ping, ping_at), (thanks, thanks_at) = inserted

        def of_both(query: str) -> list[tuple[object, ...]]:
            """`query`'s rows, sorted; its `%s` is the two tickets' ids."""
            return sorted(conn.execute(query, ([assigned, unassigned],)).fetchall())  # type: ignore[type-var]

        notified = of_both(
            "select recipient_id::text, message_id::text, reason from public.notifications where ticket_id = any(%s)"
        )
        assert notified == sorted(
            [
                (agent.id, asked, "reply"),  # a customer's message: the assignee
                (customer.id, reply, "reply"),  # a public staff reply: the customer
                (admin.id, reply, "mention"),  # an admin may open any ticket
                (outsider.id, note, "mention"),  # an unassigned ticket: any agent; never the author himself
                (agent.id, thanks, "reply"),
            ]
        )
        mentioned = of_both(
            "select message_id::text, mentioned_id::text, author_id::text, ticket_id::text, created_at"
            " from public.mentions where ticket_id = any(%s)"
        )
        assert mentioned == sorted(
            [(reply, admin.id, agent.id, assigned, reply_at), (note, outsider.id, agent.id, unassigned, note_at)]
        )

        tickets = {
            str(r[0]): tuple(r[1:])
            for r in of_both(
                "select id, status, last_message_at, first_response_at from public.tickets where id = any(%s)"
            )
        }
        assert tickets[assigned] == ("open", thanks_at, reply_at)  # reopened by the customer, answered by the agent
        assert tickets[unassigned] == ("open", ping_at, None)  # an internal note is no response
        assert asked_at < reply_at and note_at < ping_at

        sla = (
            "select ticket_id::text, first_response_due_at, awaiting_reply_since, next_response_due_at, change_id"
            " from public.ticket_sla where ticket_id = any(%s)"
        )
        after_trigger = of_both(sla)
        assert len(after_trigger) == 2
        conn.execute("select private.recompute_sla(%s::uuid[])", ([assigned, unassigned],))
        assert of_both(sla) == after_trigger  # nothing left to recompute: the trigger's rows are the recompute's
        since = {r[0]: r[2] for r in after_trigger}
        assert since == {assigned: thanks_at, unassigned: None}  # waiting since after the reply; no first response yet
        conn.rollback()
