-- The SLA's waiting time counts a message sent with an ended session's token as its sender's customer self too.
--
-- Why (review15b): 20261213000110 made such a message a customer's for the ticket's first response, its
-- notifications and its mentions, but `private.sla_inputs` (the "awaiting reply since" and next-response due time of
-- `ticket_sla`) read the sender's role from `profiles` again, later, for the whole thread: the outsider's message on
-- the account's own ticket still counted as the desk's newest staff reply, and stopped the next-response clock of the
-- customer message before it. Whether the session was live is known only while the message is inserted, so the
-- insert trigger now records such messages in `private.ended_session_messages` (a message id; gone with its message),
-- and `sla_inputs` counts a recorded message as a customer's and never as a staff reply.
--
-- Creates: table `private.ended_session_messages` (RLS on, no policies; no API role may touch it: only the
-- security definer functions below, owned by the migration's role, read and write it). Replaces
-- `private.messages_after_insert_rules()` (as 20261213000110 wrote it, plus the insert into that table; executable
-- by its owner only) and `private.sla_inputs(uuid[])` (as 20261205000200 wrote it, plus the rule, keeping
-- 20261205000210's generic plan; executable by `service_role`, as before).

create table private.ended_session_messages (
  message_id uuid primary key references public.messages (id) on delete cascade
);
alter table private.ended_session_messages enable row level security;  -- no policies: only the functions below
revoke all on table private.ended_session_messages from public, anon, authenticated, service_role;

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


create or replace function private.sla_inputs(ticket_ids uuid[])
returns table (id uuid, created_at timestamptz, first_minutes integer, since timestamptz, next_minutes integer)
language sql stable security definer set search_path = ''
set enable_bitmapscan = off set enable_seqscan = off set plan_cache_mode = force_generic_plan as $$
  select t.id, t.created_at, g.first_response_minutes, w.since, g.next_response_minutes
  from public.tickets t
  left join public.sla_targets g on g.priority = t.priority
  cross join lateral (
    -- after the first response: the oldest customer message after the newest public staff reply; a message sent
    -- with an ended session's token is a customer's, whatever its sender's profile says
    select case when t.first_response_at is null then null else (
      select m.created_at from public.messages m join public.profiles p on p.id = m.sender_id
      where m.ticket_id = t.id and m.deleted_at is null
        and (p.role = 'customer'
             or exists (select 1 from private.ended_session_messages e where e.message_id = m.id))
        and m.created_at > coalesce((
          select r.created_at from public.messages r join public.profiles rp on rp.id = r.sender_id
          where r.ticket_id = t.id and not r.is_internal and rp.role in ('agent', 'admin')
            and not exists (select 1 from private.ended_session_messages e where e.message_id = r.id)
          order by r.created_at desc limit 1), '-infinity')
      order by m.created_at limit 1)
    end as since
  ) w
  where t.id = any(ticket_ids)
$$;

-- create or replace keeps the functions' grants; restated so this file says what it leaves
revoke all on function private.messages_after_insert_rules() from public, anon, authenticated, service_role;
revoke all on function private.sla_inputs(uuid[]) from public, anon, authenticated;
grant execute on function private.sla_inputs(uuid[]) to service_role;
