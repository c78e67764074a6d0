-- Two mends from an attacker's review (review15), each tested in tests/test_review15_mends.py.
--
-- 1. With `staff_require_mfa` on (20261130000600_staff_mfa.sql), a staff session below aal2 still learned desk
--    facts through two security definer functions the restrictive policies cannot reach: `ticket_viewers()` told
--    it who was viewing which ticket (names and roles), and `take_ticket()` took an unassigned ticket (the
--    tickets trigger refused that write) or said which colleague held another. Both now refuse such a session as
--    the tables do. `ticket_signal` stays the one documented exception (it reads nothing).
-- 2. A new message's `deleted_by` was kept as the client sent it: a customer could store a live message "deleted
--    by" an admin's id. The insert trigger clears it with `created_at`, `edited_at` and `deleted_at` (the body is
--    20261129000200_message_order.sql's, plus that line; redefined rather than a second trigger, which would be a
--    second call per inserted row on the insert every realtime figure stands on).

create or replace function public.take_ticket(ticket uuid)
returns table (outcome text, assignee_id uuid, assignee_name text)
language plpgsql security definer set search_path = '' as $$
declare
  me uuid := auth.uid();
  holder uuid;
begin
  if me is null or not private.is_staff() then
    raise exception 'only agents and admins take tickets' using errcode = '42501';
  end if;
  if not private.mfa_satisfied() then
    raise exception using errcode = '42501',
      message = 'this project requires two-step sign-in for staff: sign in with your authenticator code';
  end if;
  select t.assignee_id into holder from public.tickets t where t.id = ticket for update;
  if not found then
    raise exception 'no such ticket' using errcode = 'P0002';
  end if;
  if holder is null then
    update public.tickets t set assignee_id = me where t.id = ticket;
    holder := me;
    outcome := 'taken';
  elsif holder = me then
    outcome := 'already_yours';
  else
    outcome := 'lost';
  end if;
  assignee_id := holder;
  select p.display_name into assignee_name from public.profiles p where p.id = holder;
  return next;
end $$;

create or replace function public.ticket_viewers(ticket uuid default null)
returns table (ticket_id uuid, user_id uuid, name text, role text)
language plpgsql stable security definer set search_path = '' as $$
begin
  if auth.uid() is null then
    raise exception using errcode = '42501', message = 'sign in to see who is viewing';
  end if;
  if not private.mfa_satisfied() then
    raise exception using errcode = '42501',
      message = 'this project requires two-step sign-in for staff: sign in with your authenticator code';
  end if;
  if ticket is null then
    if not private.is_staff() then
      raise exception using errcode = '42501', message = 'only agents see who views which ticket';
    end if;
    return query
      select v.ticket_id, v.user_id, p.display_name, p.role from private.ticket_viewers v
      join public.profiles p on p.id = v.user_id
      where v.seen_at > now() - interval '50 seconds' and p.role in ('agent', 'admin')
      order by v.ticket_id, v.user_id;
  else
    if not private.may_join_ticket_topic('ticket:' || ticket::text) then
      raise exception using errcode = '42501', message = 'you may not see who views this ticket';
    end if;
    return query
      select v.ticket_id, v.user_id, p.display_name, p.role from private.ticket_viewers v
      join public.profiles p on p.id = v.user_id
      where v.ticket_id = ticket and v.seen_at > now() - interval '50 seconds'
      order by v.user_id;
  end if;
end $$;

create or replace function private.messages_before_insert() returns trigger
language plpgsql set search_path = '' as $$
declare
  previous timestamptz := nullif(current_setting('supportchat.last_message_created_at', true), '')::timestamptz;
  stamp timestamptz := clock_timestamp();
begin
  -- the server clock orders threads, whatever the client sent; a previous stamp from the future
  -- could only be forged, never the result of this function: ignore it
  if previous is not null and previous < stamp + interval '1 minute' then
    stamp := greatest(stamp, previous + interval '1 microsecond');
  end if;
  perform set_config('supportchat.last_message_created_at', stamp::text, true);
  new.created_at := stamp;
  new.edited_at := null;
  new.deleted_at := null;
  new.deleted_by := null;
  return new;
end $$;

revoke all on function public.take_ticket(uuid) from public, anon;
grant execute on function public.take_ticket(uuid) to authenticated, service_role;
revoke all on function public.ticket_viewers(uuid) from public, anon;
grant execute on function public.ticket_viewers(uuid) to authenticated, service_role;
-- a trigger function, not an API: only the roles that insert messages run it
revoke all on function private.messages_before_insert() from public, anon;
grant execute on function private.messages_before_insert() to authenticated, service_role;
