-- When staff snoozed a ticket until is staff business: `tickets.snoozed_until` moves into the staff-only
-- `public.ticket_snoozes`.
--
-- Why (SECURITY.md, "a customer can read tickets.snoozed_until"): RLS decides rows, not columns, and customers and
-- staff are both the `authenticated` role, so no column grant can tell them apart. The customer's own ticket row
-- carried the column through REST (`select=*`), realtime's ticket UPDATEs and the `sync_*` pages (`sync_tickets`,
-- `sync_batch('tickets')`, the scoped pulls): a customer learned that, and until when, staff had put them off.
--
--   ticket_snoozes   one row per ticket ever snoozed: `snoozed_until` (null = no timed snooze: "until the customer
--                    replies", or cleared), who last wrote it (`updated_by`, the server's `auth.uid()`) and when
--                    (`updated_at`, the server's clock), and the change cursor (`change_xid`, `change_id`, stamped
--                    by `private.stamp_change()` like every synced table). RLS as `ticket_sla`'s: staff who see
--                    the ticket read it, and insert and update it (a snooze is an upsert on `ticket_id`); customers
--                    hold no policy (they read and write nothing); the restrictive `staff_mfa` policy as on every
--                    staff table. No client deletes: clearing a snooze sets null, so pulls see it (a DELETE is
--                    invisible to them); the row goes with its ticket (on delete cascade).
--   ticket_snoozes_guard   the rules `tickets_snooze_guard` kept (20261129000530, 20261214000200): only staff
--                    snooze (42501: RLS refuses a customer before it; the guard also holds for a security definer
--                    function a customer calls, which runs as its owner: the request's claims name the API role,
--                    as wake_snoozed_tickets reads them; clearing is anyone's RLS or such a function lets write, so
--                    that tickets_clear_snooze clears on a customer's reply); the time is real and at most a year
--                    ahead when set or changed (22008; the CHECK keeps [1970, 3000) for every role); a ticket that is
--                    not pending has no snooze (the value is cleared, as the old guard cleared the column). `ticket_id` never changes.
--   tickets_clear_snooze   any change of a ticket's status clears its snooze (the old guard cleared it whenever the
--                    status was not pending; a customer's reply reopens a pending ticket, migration 20261214000210,
--                    so it wakes the ticket and clears the snooze as before). Clearing on entering 'pending' too
--                    drops a snooze left behind by a snooze written while the ticket was reopened at the same
--                    moment (the guard read 'pending' before the reopening committed); the app sends the status
--                    change first and the snooze after it, so its own snooze is never the one cleared.
--   wake_snoozed_tickets()  reads the new table (same security definer check and grants).
--   sync_ticket_snoozes(after_xid, after_id, max_rows)  the cursor pull, as `sync_ticket_sla` (security invoker,
--                    RLS of the caller, at most 1,000 rows a page below the horizon).
--
-- Existing snoozes are moved before the column goes (a time more than a year ahead, allowed before 20261214000200,
-- is kept as it is: the guard checks writes, and this copy is no write of a user's).
--
-- Grants: the table as the other workspace tables (select, insert, update to authenticated; all four to
-- service_role; anon nothing); `sync_ticket_snoozes` to authenticated and service_role like the other pulls; the
-- trigger functions to nobody. `sync_changed` learns the new table in 20261216000200 (it lands with this one; both
-- were written at once, and one restatement of that function is enough).

-- the table --------------------------------------------------------------------------------------------------

create table public.ticket_snoozes (
  ticket_id uuid primary key references public.tickets (id) on delete cascade,
  snoozed_until timestamptz
    constraint ticket_snoozes_snoozed_until_range
    check (snoozed_until >= '1970-01-01 00:00:00+00' and snoozed_until < '3000-01-01 00:00:00+00'),
  updated_by uuid default auth.uid(),  -- no second key to profiles: it would make embeds ambiguous
  updated_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);
create index ticket_snoozes_change_idx on public.ticket_snoozes (change_xid, change_id);
create index ticket_snoozes_due_idx on public.ticket_snoozes (snoozed_until) where snoozed_until is not null;

create trigger ticket_snoozes_change before insert or update on public.ticket_snoozes
  for each row execute function private.stamp_change();

-- the snoozes there are, moved before the guard exists (see the header)
insert into public.ticket_snoozes (ticket_id, snoozed_until)
select id, snoozed_until from public.tickets where snoozed_until is not null;

create or replace function private.ticket_snoozes_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.snoozed_until is not null and not private.is_staff()
     and (current_user in ('authenticated', 'anon')
          or coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '')
             in ('authenticated', 'anon')) then
    raise exception 'only staff snooze a ticket' using errcode = '42501';
  end if;
  if tg_op = 'UPDATE' and new.ticket_id <> old.ticket_id then
    raise exception 'a snooze''s ticket_id cannot change' using errcode = '42501';
  end if;
  -- the ticket as the caller sees it (RLS refuses the row anyway when they do not)
  if (select t.status from public.tickets t where t.id = new.ticket_id) is distinct from 'pending' then
    new.snoozed_until := null;
  end if;
  -- checked when set or changed only: a snooze set within the bound stays valid as time passes
  if new.snoozed_until is not null and (tg_op = 'INSERT' or new.snoozed_until is distinct from old.snoozed_until)
     and not (new.snoozed_until >= '1970-01-01 00:00:00+00' and new.snoozed_until <= now() + interval '1 year') then
    raise exception 'a ticket is snoozed until a time at most a year from now'
      using errcode = '22008', detail = format('snoozed_until %s', new.snoozed_until);
  end if;
  new.updated_by := auth.uid();
  new.updated_at := now();
  return new;
end $$;

create trigger ticket_snoozes_guard before insert or update on public.ticket_snoozes
  for each row execute function private.ticket_snoozes_guard();

alter table public.ticket_snoozes enable row level security;
create policy ticket_snoozes_select on public.ticket_snoozes for select to authenticated
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = ticket_snoozes.ticket_id));
create policy ticket_snoozes_insert on public.ticket_snoozes for insert to authenticated
  with check ((select private.is_staff())
              and exists (select 1 from public.tickets t where t.id = ticket_snoozes.ticket_id));
create policy ticket_snoozes_update on public.ticket_snoozes for update to authenticated
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = ticket_snoozes.ticket_id))
  with check ((select private.is_staff())
              and exists (select 1 from public.tickets t where t.id = ticket_snoozes.ticket_id));
create policy staff_mfa on public.ticket_snoozes as restrictive for all to authenticated
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));

-- the column leaves tickets ------------------------------------------------------------------------------------

drop trigger tickets_snooze_guard on public.tickets;
drop function private.tickets_snooze_guard();
drop index public.tickets_snoozed_idx;
alter table public.tickets drop constraint tickets_snoozed_until_range;
alter table public.tickets drop column snoozed_until;

-- a status change clears the snooze -----------------------------------------------------------------------------

create or replace function private.tickets_clear_snooze() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.ticket_snoozes set snoozed_until = null where ticket_id = new.id and snoozed_until is not null;
  return null;
end $$;

create trigger tickets_clear_snooze after update of status on public.tickets
  for each row when (old.status is distinct from new.status)
  execute function private.tickets_clear_snooze();

-- waking ------------------------------------------------------------------------------------------------------

create or replace function public.wake_snoozed_tickets() returns integer
language plpgsql security definer set search_path = '' as $$
declare
  woke integer;
begin
  -- a definer runs as its owner, so the caller's API role comes from the request's claims (none: a
  -- direct connection, such as the notify worker's)
  if coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '') in ('authenticated', 'anon')
     and not private.is_staff() then
    raise exception 'only staff wake tickets' using errcode = '42501';
  end if;
  update public.tickets t set status = 'open'
  from public.ticket_snoozes s
  where s.ticket_id = t.id and t.status = 'pending' and s.snoozed_until <= now();
  get diagnostics woke = row_count;
  return woke;
end $$;

-- the pull ----------------------------------------------------------------------------------------------------

create or replace function public.sync_ticket_snoozes(after_xid bigint default 0, after_id bigint default 0,
                                                      max_rows integer default 1000)
returns setof public.ticket_snoozes language sql stable as $$
  select * from public.ticket_snoozes r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;

alter publication supabase_realtime add table public.ticket_snoozes;

-- grants ------------------------------------------------------------------------------------------------------

revoke all on public.ticket_snoozes from public, anon, authenticated, service_role;
grant select, insert, update on public.ticket_snoozes to authenticated;
grant select, insert, update, delete on public.ticket_snoozes to service_role;
revoke all on function public.sync_ticket_snoozes(bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_ticket_snoozes(bigint, bigint, integer) to authenticated, service_role;
-- create or replace keeps the function's grants (20261129000530); restated so this file says what it leaves
revoke all on function public.wake_snoozed_tickets() from public, anon, authenticated, service_role;
grant execute on function public.wake_snoozed_tickets() to authenticated, service_role;
revoke all on function private.ticket_snoozes_guard(), private.tickets_clear_snooze()
  from public, anon, authenticated, service_role;
