-- The SLA inputs read the tail of a thread whatever the statistics say: a message's sender is looked up, not joined.
--
-- Why: 20261205000200 made the "awaiting reply since" two index walks over messages_ticket_created_idx that stop at
-- the first match, and 20261214000100 kept them, but each walk joined a message to its sender's profile (and
-- anti-joined the ended-session messages). Which join PostgreSQL picks for that depends on the tables' statistics:
-- a nested loop keeps the index order and stops early, a hash or merge join reads every message of the ticket
-- first. CI's shared database, after the whole test suite, got the hash join: 357 tuples for one ticket of a
-- 302-message thread instead of ~10, inside every message insert (the messages_sla trigger). A scalar subquery is
-- never turned into a join, so here the sender's role and the ended-session mark are looked up per message the walk
-- reaches (by primary key) and each walk is a single ordered index scan under any planner settings.
-- tests/test_sla_inputs.py counts the rows read with nested loops, hash joins and merge joins each forbidden.
--
-- Same answers: every message has a profile (messages.sender_id references profiles, not null), so the join kept
-- every row and the lookup finds exactly one role.
--
-- Replaces `private.sla_inputs(uuid[])` (as 20261214000100 wrote it; same settings: no bitmap or sequential scans,
-- a generic plan; executable by `service_role` only, as before).

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
      select m.created_at from public.messages m
      where m.ticket_id = t.id and m.deleted_at is null
        and ((select p.role from public.profiles p where p.id = m.sender_id) = 'customer'
             or (select true from private.ended_session_messages e where e.message_id = m.id))
        and m.created_at > coalesce((
          select r.created_at from public.messages r
          where r.ticket_id = t.id and not r.is_internal
            and (select rp.role from public.profiles rp where rp.id = r.sender_id) in ('agent', 'admin')
            and (select true from private.ended_session_messages e where e.message_id = r.id) is null
          order by r.created_at desc limit 1), '-infinity')
      order by m.created_at limit 1)
    end as since
  ) w
  where t.id = any(ticket_ids)
$$;

-- create or replace keeps the function's grants; restated so this file says what it leaves
revoke all on function private.sla_inputs(uuid[]) from public, anon, authenticated;
grant execute on function private.sla_inputs(uuid[]) to service_role;
