-- SLA due times of many tickets in one pass over the business calendar (issue 14, item 4).
--
-- An admin's change to the SLA settings (timezone, targets, business hours, holidays) recomputes the due times
-- of every open and pending ticket inside the admin's own statement (private.sla_after_settings). Each ticket
-- called private.add_business_minutes twice, and that walks the calendar a day at a time with two queries per
-- day: with 2,000 open tickets, 30-minute business days and a one-day target, one change took ~6 s, so on a
-- bigger desk the admin's request hits the `authenticated` role's statement timeout and the change cannot be
-- made at all.
--
-- private.business_due_times builds the calendar once (every business window from the earliest start's day to
-- 730 days past the latest's, in (day, opens, closes) order, with the business seconds before each window) and
-- finds each start's due time by binary search over it. It answers exactly what add_business_minutes answers
-- (the same windows in the same order, overlapping ones counted twice as there, the same 731-day horizon per
-- start, null without a target); only the arithmetic is exact seconds instead of rounded minutes.
-- tests/test_sla_bulk.py checks both against each other on random calendars.
--
-- recompute_sla uses it when more than a handful of tickets are asked for (a settings change); one ticket (a
-- new message, a priority change) keeps the walk, which stops at the due day instead of building two years.

-- what a ticket's due times are computed from (the same rows the first version of recompute_sla read)
create or replace function private.sla_inputs(ticket_ids uuid[])
returns table (id uuid, created_at timestamptz, first_minutes integer, since timestamptz, next_minutes integer)
language sql stable security definer set search_path = '' as $$
  select t.id, t.created_at, g.first_response_minutes, w.since, g.next_response_minutes
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
$$;

create or replace function private.business_due_times(starts timestamptz[], minutes integer[])
returns timestamptz[]
language plpgsql stable security definer set search_path = '' as $$
declare
  tz text := coalesce((select timezone from public.sla_settings), 'UTC');
  n integer := coalesce(array_length(starts, 1), 0);
  due timestamptz[] := array_fill(null::timestamptz, array[n]);
  first_day date;
  last_day date;
  w_day date[];        -- each window's day,
  w_open timestamp[];  -- local start,
  w_close timestamp[]; -- local end,
  w_before numeric[];  -- and business seconds of all windows before it (full spans)
  total integer;
  i integer;
  k integer;
  lo integer;
  hi integer;
  mid integer;
  local_start timestamp;
  start_day date;
  remaining numeric;
  s timestamp;
  span numeric;
  target numeric;
begin
  if n = 0 then
    return due;
  end if;
  if not exists (select 1 from public.sla_business_hours) then
    for i in 1 .. n loop
      if starts[i] is not null and minutes[i] is not null then
        due[i] := starts[i] + make_interval(mins => minutes[i]);
      end if;
    end loop;
    return due;
  end if;
  select min((st at time zone tz)::date), max((st at time zone tz)::date) into first_day, last_day
  from unnest(starts) st;
  if first_day is null then
    return due;
  end if;
  select array_agg(c.day order by c.day, c.opens, c.closes),
         array_agg(c.day + c.opens order by c.day, c.opens, c.closes),
         array_agg(c.day + c.closes order by c.day, c.opens, c.closes),
         array_agg(c.before order by c.day, c.opens, c.closes)
    into w_day, w_open, w_close, w_before
  from (
    select g.day, h.opens, h.closes,
           coalesce(sum(extract(epoch from h.closes - h.opens)) over (
             order by g.day, h.opens, h.closes rows between unbounded preceding and 1 preceding), 0) as before
    from (select d::date as day from generate_series(first_day, last_day + 730, interval '1 day') d) g
    join public.sla_business_hours h on h.weekday = extract(isodow from g.day)
    where not exists (select 1 from public.sla_holidays x where x.day = g.day)
  ) c;
  total := coalesce(array_length(w_day, 1), 0);
  for i in 1 .. n loop
    continue when starts[i] is null or minutes[i] is null or total = 0;
    local_start := starts[i] at time zone tz;
    start_day := local_start::date;
    remaining := minutes[i] * 60;
    -- the first window on or after the start's day
    lo := 1;
    hi := total + 1;
    while lo < hi loop
      mid := (lo + hi) / 2;
      if w_day[mid] < start_day then lo := mid + 1; else hi := mid; end if;
    end loop;
    k := lo;
    -- the start's own day: its windows clipped to the start, as the walk does
    while k <= total and w_day[k] = start_day loop
      s := greatest(w_open[k], local_start);
      if w_close[k] > s then
        span := extract(epoch from w_close[k] - s);
        if span >= remaining then
          due[i] := (s + make_interval(secs => remaining)) at time zone tz;
          exit;
        end if;
        remaining := remaining - span;
      end if;
      k := k + 1;
    end loop;
    continue when due[i] is not null or k > total;
    -- later days: whole windows; the first whose end covers what remains
    target := w_before[k] + remaining;
    lo := k;
    hi := total + 1;
    while lo < hi loop
      mid := (lo + hi) / 2;
      if w_before[mid] + extract(epoch from w_close[mid] - w_open[mid]) < target then lo := mid + 1; else hi := mid; end if;
    end loop;
    if lo <= total and w_day[lo] <= start_day + 730 then
      due[i] := (w_open[lo] + make_interval(secs => target - w_before[lo])) at time zone tz;
    end if;
  end loop;
  return due;
end $$;

create or replace function private.recompute_sla(ticket_ids uuid[]) returns void
language plpgsql security definer set search_path = '' as $$
declare
  ids uuid[];
  created timestamptz[];
  first_minutes integer[];
  waiting timestamptz[];
  next_minutes integer[];
  first_due timestamptz[];
  next_due timestamptz[];
begin
  if cardinality(ticket_ids) <= 4 then  -- one ticket's event: the walk stops at the due day
    select array_agg(r.id), array_agg(private.add_business_minutes(r.created_at, r.first_minutes)),
           array_agg(r.since), array_agg(private.add_business_minutes(r.since, r.next_minutes))
      into ids, first_due, waiting, next_due
    from private.sla_inputs(ticket_ids) r;
  else
    select array_agg(r.id), array_agg(r.created_at), array_agg(r.first_minutes), array_agg(r.since),
           array_agg(r.next_minutes)
      into ids, created, first_minutes, waiting, next_minutes
    from private.sla_inputs(ticket_ids) r;
    first_due := private.business_due_times(created, first_minutes);
    next_due := private.business_due_times(waiting, next_minutes);
  end if;
  if ids is null then
    return;
  end if;
  insert into public.ticket_sla as s (ticket_id, first_response_due_at, awaiting_reply_since, next_response_due_at,
                                      updated_at)
  select u.id, u.first_due, u.since, u.next_due, now()
  from unnest(ids, first_due, waiting, next_due) as u(id, first_due, since, next_due)
  on conflict (ticket_id) do update set
    first_response_due_at = excluded.first_response_due_at,
    awaiting_reply_since = excluded.awaiting_reply_since,
    next_response_due_at = excluded.next_response_due_at,
    updated_at = now()
  where (s.first_response_due_at, s.awaiting_reply_since, s.next_response_due_at)
        is distinct from (excluded.first_response_due_at, excluded.awaiting_reply_since, excluded.next_response_due_at);
end $$;

-- grants: internal helpers of the triggers, as add_business_minutes and recompute_sla are
revoke all on function private.business_due_times(timestamptz[], integer[]), private.sla_inputs(uuid[])
  from public, anon, authenticated;
grant execute on function private.business_due_times(timestamptz[], integer[]), private.sla_inputs(uuid[])
  to service_role;
