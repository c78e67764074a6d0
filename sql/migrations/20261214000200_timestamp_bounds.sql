-- Timestamps and dates that users write are real instants of this era: no 'infinity', no year past 9999, no BC.
--
-- Why (review16): PostgreSQL takes 'infinity', '-infinity', '20000-01-01' and '0044-03-15 BC' for a timestamptz or a
-- date, and PostgREST sends them back as such; Python's datetime and date (years 1 to 9999, no infinities) cannot
-- read them, so one ordinary PATCH by any agent (`tickets {status: 'pending', snoozed_until: 'infinity'}`) made the
-- pull of every client that could see the ticket fail on that row, page after page, forever (the client now sets
-- such a row aside instead; this migration keeps them out in the first place).
--
-- The audit (every timestamptz/date column of the public tables, written through REST as each role): a guard
-- trigger already replaces every other one with the server's clock (created_at, updated_at, edited_at,
-- deleted_at, removed_at, added_at, resolved_at, first_response_at, last_message_at, accepted_at) or refuses
-- the change. Four took the caller's value:
--   tickets.snoozed_until       any staff member ('infinity', '20000-01-01', '-infinity'; the guard checked roles only)
--   sla_holidays.day            admins ('infinity', '-infinity', '20000-01-01')
--   ticket_reads.last_read_at   anyone on a ticket they see, a customer too ('-infinity', BC: the clamp is least(x, now()))
--   mentions.seen_at            the mentioned user ('-infinity', BC: the guard keeps least(x, now()))
-- Each now has a CHECK that keeps it within [1970-01-01, 3000-01-01) UTC (for the date, its days), which holds for
-- every role, service_role included; and a snooze may be at most a year ahead (the app's menu offers hours to next
-- Monday, its "Pick a time…" any day: the app refuses more than a year too), refused by `tickets_snooze_guard`
-- with 22008 and a plain message when a write sets or changes it.
--
-- Rows already out of range are mended first, so the constraints are valid at once: a snooze becomes "until the
-- customer replies" (null; the ticket stays pending), a holiday on no real day is deleted (it excluded nothing),
-- a read marker before 1970 reads as nothing read (1970-01-01), a mention seen before 1970 is seen now.
--
-- Replaces `private.tickets_snooze_guard()` (as 20261129000530 wrote it, plus the bound; a trigger function,
-- executable by no API role). Creates only constraints: nothing to grant.

update public.tickets set snoozed_until = null
where snoozed_until < '1970-01-01 00:00:00+00' or snoozed_until >= '3000-01-01 00:00:00+00';
delete from public.sla_holidays where day < '1970-01-01' or day >= '3000-01-01';
update public.ticket_reads set last_read_at = '1970-01-01 00:00:00+00' where last_read_at < '1970-01-01 00:00:00+00';
update public.mentions set seen_at = now()
where seen_at < '1970-01-01 00:00:00+00' or seen_at >= '3000-01-01 00:00:00+00';

alter table public.tickets add constraint tickets_snoozed_until_range
  check (snoozed_until >= '1970-01-01 00:00:00+00' and snoozed_until < '3000-01-01 00:00:00+00');
alter table public.sla_holidays add constraint sla_holidays_day_range
  check (day >= '1970-01-01' and day < '3000-01-01');
alter table public.ticket_reads add constraint ticket_reads_last_read_at_range
  check (last_read_at >= '1970-01-01 00:00:00+00' and last_read_at < '3000-01-01 00:00:00+00');
alter table public.mentions add constraint mentions_seen_at_range
  check (seen_at >= '1970-01-01 00:00:00+00' and seen_at < '3000-01-01 00:00:00+00');

create or replace function private.tickets_snooze_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and new.snoozed_until is distinct from old.snoozed_until
     and current_user in ('authenticated', 'anon') and not private.is_staff() then
    raise exception 'only staff snooze a ticket' using errcode = '42501';
  end if;
  if new.status <> 'pending' then
    new.snoozed_until := null;
  end if;
  -- checked when set or changed only: a snooze set within the bound stays valid as time passes
  if new.snoozed_until is not null and (tg_op = 'INSERT' or new.snoozed_until is distinct from old.snoozed_until)
     and not (new.snoozed_until >= '1970-01-01 00:00:00+00' and new.snoozed_until <= now() + interval '1 year') then
    raise exception 'a ticket is snoozed until a time at most a year from now'
      using errcode = '22008', detail = format('snoozed_until %s', new.snoozed_until);
  end if;
  return new;
end $$;

-- create or replace keeps the function's grants; restated so this file says what it leaves
revoke all on function private.tickets_snooze_guard() from public, anon, authenticated, service_role;
