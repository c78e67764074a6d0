-- The SLA inputs of a ticket read the tail of its thread, not the whole thread (issue 15, item 3).
--
-- Every new message runs private.recompute_sla for its ticket (the messages_sla statement trigger), and that
-- reads private.sla_inputs. Its "awaiting reply since" took max(created_at) of the public staff replies and
-- then min(created_at) of the customer's later messages: two aggregates, so PostgreSQL read every message of
-- the ticket (a bitmap scan joined to profiles; ~3,000 tuples for a 600-message thread) inside the insert of
-- each new message, a cost that grew with the thread (0.55 ms of a 1.5 ms insert at 600 messages; realtime's
-- insert-to-delivery latency starts with that insert).
--
-- The same two questions as "the newest staff reply" and "the oldest customer message after it", each an
-- `order by created_at ... limit 1` over messages_ticket_created_idx (ticket_id, created_at desc): the first
-- walks back from the newest message until a public staff reply, the second forward from that reply to the
-- first customer message. The planner would take that order from the index only when it expects the thread to
-- be long: it estimates a thread from the average ticket (a few messages), and for a few rows a bitmap scan and a
-- sort look as cheap, so a long thread was read whole again. The function therefore plans without bitmap and
-- sequential scans (`set enable_bitmapscan/enable_seqscan = off`, for its own statements only): every table it
-- reads is looked up by an index anyway (tickets by id, targets by priority, profiles by id). Same answers (created_at is not null, so max/min and the first row ordered agree;
-- an empty set is null either way, and no staff reply still means '-infinity'); only the rows read differ.
-- tests/test_sla_inputs.py compares both on random threads and counts the rows read.

create or replace function private.sla_inputs(ticket_ids uuid[])
returns table (id uuid, created_at timestamptz, first_minutes integer, since timestamptz, next_minutes integer)
language sql stable security definer set search_path = ''
set enable_bitmapscan = off set enable_seqscan = off as $$
  select t.id, t.created_at, g.first_response_minutes, w.since, g.next_response_minutes
  from public.tickets t
  left join public.sla_targets g on g.priority = t.priority
  cross join lateral (
    -- after the first response: the oldest customer message after the newest public staff reply
    select case when t.first_response_at is null then null else (
      select m.created_at from public.messages m join public.profiles p on p.id = m.sender_id
      where m.ticket_id = t.id and p.role = 'customer' and m.deleted_at is null
        and m.created_at > coalesce((
          select r.created_at from public.messages r join public.profiles rp on rp.id = r.sender_id
          where r.ticket_id = t.id and not r.is_internal and rp.role in ('agent', 'admin')
          order by r.created_at desc limit 1), '-infinity')
      order by m.created_at limit 1)
    end as since
  ) w
  where t.id = any(ticket_ids)
$$;

-- create or replace keeps the function's grants; restated so this file says what it leaves
revoke all on function private.sla_inputs(uuid[]) from public, anon, authenticated;
grant execute on function private.sla_inputs(uuid[]) to service_role;
