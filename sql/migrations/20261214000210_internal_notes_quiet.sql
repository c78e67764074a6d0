-- An internal note no longer touches its ticket's row: a customer could see when staff wrote one.
--
-- Why (review16): `private.messages_after_insert_rules()` set `tickets.last_message_at = greatest(...,
-- created_at)` for every new message, internal notes too, so the ticket's `last_message_at`, `updated_at` and
-- `change_xid` moved and realtime sent the customer the ticket's UPDATE the moment staff wrote a note about them
-- (their REST view showed its time, their app re-pulled the row). Now the ticket's update (last_message_at, the
-- first response, a customer reply reopening it) is computed from the batch's public messages only, and a batch of
-- internal notes does not update the ticket at all. `first_response_at` already ignored notes; the status rule read
-- the customer's messages, which are never internal.
--
-- What staff see: `tickets.last_message_at` is the time of the newest public message, so the inbox (ordered by it)
-- no longer moves a ticket up for a note; the row's age and preview in the app come from the cached thread, notes
-- included (sync/cache/reads.py), and unread counts count notes from others as before. A note still recomputes
-- the SLA (staff-only `ticket_sla`, unchanged: a note is no response), records its mentions and notifies them.
--
-- Replaces `private.messages_after_insert_rules()` as 20261214000100 wrote it (the ended-session rules and the
-- `private.ended_session_messages` record kept), with the filter above; executable by its owner only.

create or replace function private.messages_after_insert_rules() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  ids uuid[];
begin
  with msg as (
    select i.id, i.ticket_id, i.sender_id, i.created_at, i.is_internal, i.content,
           case when s.role <> 'customer' and i.sender_id = auth.uid() and not (select private.session_is_live())
                then 'customer' else s.role end as sender_role,
           s.role as profile_role, t.customer_id, t.assignee_id
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
             min(created_at) filter (where sender_role in ('agent', 'admin')) as first_staff_at,
             coalesce(bool_or(sender_role = 'customer'), false) as customer_wrote
      from msg
      where not is_internal  -- an internal note leaves the ticket row alone: its customer reads that row
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
  ended as (
    insert into private.ended_session_messages (message_id)
    select id from msg where sender_role = 'customer' and profile_role <> 'customer'
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

-- create or replace keeps the function's grants; restated so this file says what it leaves
revoke all on function private.messages_after_insert_rules() from public, anon, authenticated, service_role;
