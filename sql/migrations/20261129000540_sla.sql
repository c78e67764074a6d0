-- SLA timers (issue 14): per-priority targets, business hours, holidays, and per-ticket due times the
-- server computes from its own timestamps, so every agent sees the same.
--
--   sla_settings       one row: the time zone business hours are in (an IANA name, default UTC).
--   sla_targets        per priority: first_response_minutes and next_response_minutes, counted in
--                      business minutes (null = no target).
--   sla_business_hours (weekday 1=Monday..7, opens, closes) in the settings' time zone; several rows a
--                      day for split shifts. No rows at all = round the clock.
--   sla_holidays       whole days (in that time zone) that do not count.
--   ticket_sla         per ticket, kept by triggers only:
--     first_response_due_at   created_at + the priority's first-response target; compare with
--                             tickets.first_response_at (met or breached) or now() (running);
--     awaiting_reply_since    after the first response, the oldest customer message no public staff
--                             reply answered yet (null when the ball is in the customer's court);
--     next_response_due_at    awaiting_reply_since + the next-response target.
--   Internal notes never count as responses. A priority change or a settings change recomputes the due
--   times of open tickets (recompute_sla). Admins write the settings; staff read everything here;
--   customers read nothing (the targets are staff business).

create table public.sla_settings (
  id boolean primary key default true check (id),
  timezone text not null default 'UTC',
  updated_at timestamptz not null default now()
);
insert into public.sla_settings default values;

create table public.sla_targets (
  priority text primary key check (priority in ('low', 'normal', 'high', 'urgent')),
  first_response_minutes integer check (first_response_minutes > 0),
  next_response_minutes integer check (next_response_minutes > 0),
  updated_at timestamptz not null default now()
);
insert into public.sla_targets (priority, first_response_minutes, next_response_minutes) values
  ('urgent', 60, 60), ('high', 240, 240), ('normal', 480, 480), ('low', 1440, 1440);

create table public.sla_business_hours (
  id uuid primary key default gen_random_uuid(),
  weekday smallint not null check (weekday between 1 and 7),
  opens time not null,
  closes time not null,
  check (closes > opens)
);

create table public.sla_holidays (
  day date primary key,
  name text not null default '' check (char_length(name) <= 100)
);

create or replace function private.sla_settings_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  perform now() at time zone new.timezone;  -- an unknown zone fails here, with PostgreSQL's message
  new.updated_at := now();
  return new;
end $$;

create trigger sla_settings_guard before insert or update on public.sla_settings
  for each row execute function private.sla_settings_guard();

-- `minutes` business minutes after `start`; null when there is no target (or no business time within
-- two years, a misconfiguration)
create or replace function private.add_business_minutes(start timestamptz, minutes integer) returns timestamptz
language plpgsql stable security definer set search_path = '' as $$
declare
  tz text := coalesce((select timezone from public.sla_settings), 'UTC');
  remaining numeric := minutes;
  local_start timestamp;
  d date;
  w record;
  s timestamp;
  e timestamp;
  span numeric;
begin
  if start is null or minutes is null then
    return null;
  end if;
  if not exists (select 1 from public.sla_business_hours) then
    return start + make_interval(mins => minutes);
  end if;
  local_start := start at time zone tz;
  d := local_start::date;
  for i in 1 .. 731 loop
    if not exists (select 1 from public.sla_holidays h where h.day = d) then
      for w in select opens, closes from public.sla_business_hours
               where weekday = extract(isodow from d) order by opens loop
        s := greatest(d + w.opens, local_start);
        e := d + w.closes;
        if e > s then
          span := extract(epoch from e - s) / 60;
          if span >= remaining then
            return (s + make_interval(secs => remaining * 60)) at time zone tz;
          end if;
          remaining := remaining - span;
        end if;
      end loop;
    end if;
    d := d + 1;
  end loop;
  return null;
end $$;

create table public.ticket_sla (
  ticket_id uuid primary key references public.tickets (id) on delete cascade,
  first_response_due_at timestamptz,
  awaiting_reply_since timestamptz,
  next_response_due_at timestamptz,
  updated_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);
create index ticket_sla_change_idx on public.ticket_sla (change_xid, change_id);
create index ticket_sla_next_due_idx on public.ticket_sla (next_response_due_at) where next_response_due_at is not null;

create trigger ticket_sla_change before insert or update on public.ticket_sla
  for each row execute function private.stamp_change();

-- the due times of some tickets, from their current state
create or replace function private.recompute_sla(ticket_ids uuid[]) returns void
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.ticket_sla as s (ticket_id, first_response_due_at, awaiting_reply_since, next_response_due_at,
                                      updated_at)
  select t.id,
         private.add_business_minutes(t.created_at, g.first_response_minutes),
         w.since,
         private.add_business_minutes(w.since, g.next_response_minutes),
         now()
  from public.tickets t
  left join public.sla_targets g on g.priority = t.priority
  cross join lateral (
    -- after the first response: the oldest customer message after the last public staff reply
    select case when t.first_response_at is null then null else (
      select min(m.created_at) from public.messages m join public.profiles p on p.id = m.sender_id
      where m.ticket_id = t.id and p.role = 'customer' and m.deleted_at is null
        and m.created_at > coalesce((
          select max(r.created_at) from public.messages r join public.profiles rp on rp.id = r.sender_id
          where r.ticket_id = t.id and not r.is_internal and rp.role in ('agent', 'admin')), '-infinity'))
    end as since
  ) w
  where t.id = any(ticket_ids)
  on conflict (ticket_id) do update set
    first_response_due_at = excluded.first_response_due_at,
    awaiting_reply_since = excluded.awaiting_reply_since,
    next_response_due_at = excluded.next_response_due_at,
    updated_at = now()
  where (s.first_response_due_at, s.awaiting_reply_since, s.next_response_due_at)
        is distinct from (excluded.first_response_due_at, excluded.awaiting_reply_since, excluded.next_response_due_at);
end $$;

create or replace function private.sla_after_messages() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.recompute_sla(array(select distinct ticket_id from inserted));
  return null;
end $$;

-- after messages_after_insert (name order), which sets first_response_at
create trigger messages_sla after insert on public.messages
  referencing new table as inserted
  for each statement execute function private.sla_after_messages();

create or replace function private.sla_after_tickets() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.recompute_sla(array[new.id]);
  return null;
end $$;

create trigger tickets_sla after insert or update of priority on public.tickets
  for each row execute function private.sla_after_tickets();

-- a deleted customer message no longer waits for an answer
create or replace function private.sla_after_message_delete() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.recompute_sla(array[new.ticket_id]);
  return null;
end $$;

create trigger messages_sla_delete after update on public.messages
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function private.sla_after_message_delete();

-- new targets, hours, holidays or time zone: the open tickets' due times follow
create or replace function private.sla_after_settings() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.recompute_sla(array(select id from public.tickets where status in ('open', 'pending')));
  return null;
end $$;

create trigger sla_settings_recompute after insert or update or delete on public.sla_settings
  for each statement execute function private.sla_after_settings();
create trigger sla_targets_recompute after insert or update or delete on public.sla_targets
  for each statement execute function private.sla_after_settings();
create trigger sla_business_hours_recompute after insert or update or delete on public.sla_business_hours
  for each statement execute function private.sla_after_settings();
create trigger sla_holidays_recompute after insert or update or delete on public.sla_holidays
  for each statement execute function private.sla_after_settings();

-- existing tickets get their row now
select private.recompute_sla(array(select id from public.tickets));

-- RLS: staff read, admins write the settings; ticket_sla is written by the triggers alone ----------------

alter table public.sla_settings enable row level security;
alter table public.sla_targets enable row level security;
alter table public.sla_business_hours enable row level security;
alter table public.sla_holidays enable row level security;
alter table public.ticket_sla enable row level security;

create policy sla_settings_select on public.sla_settings for select to authenticated using ((select private.is_staff()));
create policy sla_settings_update on public.sla_settings for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));
create policy sla_targets_select on public.sla_targets for select to authenticated using ((select private.is_staff()));
create policy sla_targets_update on public.sla_targets for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));
create policy sla_business_hours_select on public.sla_business_hours for select to authenticated
  using ((select private.is_staff()));
create policy sla_business_hours_insert on public.sla_business_hours for insert to authenticated
  with check ((select private.is_admin()));
create policy sla_business_hours_update on public.sla_business_hours for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));
create policy sla_business_hours_delete on public.sla_business_hours for delete to authenticated
  using ((select private.is_admin()));
create policy sla_holidays_select on public.sla_holidays for select to authenticated using ((select private.is_staff()));
create policy sla_holidays_insert on public.sla_holidays for insert to authenticated
  with check ((select private.is_admin()));
create policy sla_holidays_update on public.sla_holidays for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));
create policy sla_holidays_delete on public.sla_holidays for delete to authenticated
  using ((select private.is_admin()));
create policy ticket_sla_select on public.ticket_sla for select to authenticated
  using ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t));

create or replace function public.sync_ticket_sla(after_xid bigint default 0, after_id bigint default 0,
                                                  max_rows integer default 1000)
returns setof public.ticket_sla language sql stable as $$
  select * from public.ticket_sla r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;

-- grants ----------------------------------------------------------------------------------------------

revoke all on public.sla_settings, public.sla_targets, public.sla_business_hours, public.sla_holidays,
  public.ticket_sla from anon, authenticated;
grant select, update (timezone) on public.sla_settings to authenticated;
grant select, update (first_response_minutes, next_response_minutes) on public.sla_targets to authenticated;
grant select, insert, update, delete on public.sla_business_hours, public.sla_holidays to authenticated;
grant select on public.ticket_sla to authenticated;
grant select, insert, update, delete on public.sla_settings, public.sla_targets, public.sla_business_hours,
  public.sla_holidays, public.ticket_sla to service_role;
revoke execute on function public.sync_ticket_sla(bigint, bigint, integer) from public, anon;
grant execute on function public.sync_ticket_sla(bigint, bigint, integer) to authenticated, service_role;
revoke all on function private.sla_settings_guard(), private.add_business_minutes(timestamptz, integer),
  private.recompute_sla(uuid[]), private.sla_after_messages(), private.sla_after_tickets(),
  private.sla_after_message_delete(), private.sla_after_settings() from public, anon, authenticated;
grant execute on function private.add_business_minutes(timestamptz, integer), private.recompute_sla(uuid[])
  to service_role;

alter publication supabase_realtime add table public.sla_settings, public.sla_targets, public.sla_business_hours,
  public.sla_holidays, public.ticket_sla;
