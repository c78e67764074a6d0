-- A new message's rules in one statement trigger instead of four (issue 15 item 3: the insert is the floor under
-- every realtime figure).
--
-- Why: every insert into public.messages ran four statement triggers over the same transition table, each a security
-- definer plpgsql function with its own statement (name order): messages_after_insert (the ticket's last_message_at,
-- first_response_at, reopening), messages_enqueue_notifications (the email outbox), messages_record_mentions
-- (public.mentions) and messages_sla (private.recompute_sla -> private.sla_inputs -> private.add_business_minutes
-- twice). Each trigger paid its own call (a security definer switch, its search_path set and restored), joined the
-- inserted rows to tickets and profiles again, and both mention triggers parsed the content again; the SLA recompute
-- paid three more security definer calls (the two calendar walks round the clock only add the target's minutes).
-- Measured (the bench's agent insert, backend CPU per insert from schedstat, alternating, load 5-8): the four
-- triggers 1.9 ms, this one 1.5 ms, of 3.6 ms for the whole insert (bench/README.md, realtime, tenth pass).
--
-- What runs now, in the same order and with the same rules as the four functions it replaces
-- (20261124000100_support_schema.sql, 20261129000520_notifications.sql, 20261129000530_agent_workspace.sql,
-- 20261129000540_sla.sql with 20261204000500/20261205000200's private.sla_inputs):
--   1. one statement: the inserted rows joined once to their ticket and sender (`msg`); the tickets' update
--      (unchanged: the newest message time, the first public staff reply, a customer's message reopens a pending or
--      resolved ticket); the mentions of a staff sender's message parsed once (`mentioned`: a staff member who is
--      not the sender and may open the ticket) and recorded in public.mentions; the outbox's rows (a public staff
--      reply -> the customer, a customer's message -> the assignee, each mention -> the mentioned, never the sender;
--      reply before mention, so a recipient both ways keeps 'reply' as before). The tickets' new values are not
--      visible to the rest of the same statement, which reads only columns the update does not write
--      (customer_id, assignee_id).
--   2. then, seeing the update's first_response_at as messages_sla did after messages_after_insert, the tickets'
--      SLA rows: private.recompute_sla when business hours are set (its calendar walk), else the same upsert with
--      add_business_minutes's round-the-clock answer (start + the target's minutes; null when either is null),
--      from the same private.sla_inputs, only when a due time or the waiting time changed.
--
-- Security: security definer as the four were (the outbox and mentions have no client privilege), search_path
-- empty, no dynamic SQL; a trigger function, executable by its owner only (as enqueue_notifications, record_mentions
-- and sla_after_messages were; messages_after_insert had execute granted to the API roles, never callable outside a
-- trigger anyway). The four old functions are dropped with their triggers: nothing else calls them.

create or replace function private.messages_after_insert_rules() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  ids uuid[];
begin
  with msg as (
    select i.id, i.ticket_id, i.sender_id, i.created_at, i.is_internal, i.content, s.role as sender_role,
           t.customer_id, t.assignee_id
    from inserted i
    join public.tickets t on t.id = i.ticket_id
    join public.profiles s on s.id = i.sender_id
  ),
  touched as (
    update public.tickets t set
      last_message_at = greatest(t.last_message_at, s.last_at),
      first_response_at = coalesce(t.first_response_at, s.first_staff_at),
      status = case when s.customer_wrote and t.status in ('pending', 'resolved') then 'open' else t.status end
    from (
      select ticket_id, max(created_at) as last_at,
             min(created_at) filter (where sender_role in ('agent', 'admin') and not is_internal) as first_staff_at,
             coalesce(bool_or(sender_role = 'customer'), false) as customer_wrote
      from msg
      group by ticket_id
    ) s
    where t.id = s.ticket_id
  ),
  mentioned as (
    select msg.id as message_id, msg.ticket_id, msg.sender_id, msg.created_at, p.id as mentioned_id
    from msg
    cross join lateral (
      select distinct lower(m[1])::uuid as id
      from regexp_matches(msg.content, '@\[[^\]\n]{0,200}\]\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)', 'g') m
      where msg.sender_role in ('agent', 'admin')
    ) x
    join public.profiles p on p.id = x.id and p.role in ('agent', 'admin')
    -- only someone who can open the ticket: neither a mention nor a mail may show a note to an agent RLS keeps out
    where p.id <> msg.sender_id and (p.role = 'admin' or msg.assignee_id is null or msg.assignee_id = p.id)
  ),
  recorded as (
    insert into public.mentions (message_id, ticket_id, mentioned_id, author_id, created_at)
    select message_id, ticket_id, mentioned_id, sender_id, created_at from mentioned
    on conflict (message_id, mentioned_id) do nothing
  )
  insert into public.notifications (recipient_id, ticket_id, message_id, reason)
  select r.recipient_id, r.ticket_id, r.message_id, r.reason
  from (
    select customer_id as recipient_id, ticket_id, id as message_id, 'reply' as reason, sender_id
    from msg where not is_internal and sender_role in ('agent', 'admin')
    union all
    select assignee_id, ticket_id, id, 'reply', sender_id
    from msg where not is_internal and sender_role = 'customer' and assignee_id is not null
    union all
    select mentioned_id, ticket_id, message_id, 'mention', sender_id from mentioned
  ) r
  where r.recipient_id <> r.sender_id
  on conflict (recipient_id, message_id) do nothing;

  ids := array(select distinct ticket_id from inserted);
  if exists (select 1 from public.sla_business_hours) then
    perform private.recompute_sla(ids);
    return null;
  end if;
  insert into public.ticket_sla as s (ticket_id, first_response_due_at, awaiting_reply_since, next_response_due_at,
                                      updated_at)
  select r.id, r.created_at + make_interval(mins => r.first_minutes), r.since,
         r.since + make_interval(mins => r.next_minutes), now()
  from private.sla_inputs(ids) r
  on conflict (ticket_id) do update set
    first_response_due_at = excluded.first_response_due_at,
    awaiting_reply_since = excluded.awaiting_reply_since,
    next_response_due_at = excluded.next_response_due_at,
    updated_at = now()
  where (s.first_response_due_at, s.awaiting_reply_since, s.next_response_due_at)
        is distinct from (excluded.first_response_due_at, excluded.awaiting_reply_since, excluded.next_response_due_at);
  return null;
end $$;

drop trigger messages_after_insert on public.messages;
drop trigger messages_enqueue_notifications on public.messages;
drop trigger messages_record_mentions on public.messages;
drop trigger messages_sla on public.messages;

create trigger messages_after_insert after insert on public.messages
  referencing new table as inserted
  for each statement execute function private.messages_after_insert_rules();

drop function private.messages_after_insert();
drop function private.enqueue_notifications();
drop function private.record_mentions();
drop function private.sla_after_messages();

revoke all on function private.messages_after_insert_rules() from public, anon, authenticated, service_role;
