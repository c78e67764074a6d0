-- Who is viewing, replayed (issue 14, collision guard): a client that opens the inbox or a ticket learns at
-- once who is already there, instead of waiting up to 20 s for the others' next 'viewing' renewal.
--
-- Viewing is broadcast by the database (public.ticket_signal, migrations 20261129000300 and 20261130000300),
-- which now also keeps the last 'viewing' of each (ticket, user) in private.ticket_viewers ('left' removes
-- it; rows older than VIEWING_TTL are ignored and pruned). Nothing else writes it; no API role reads it.
--
-- public.ticket_viewers(ticket)  the viewers seen in the last 50 s (the clients' VIEWING_TTL), with the same
--   fields the broadcasts carry (ticket_id, user_id, name, role):
--     ticket given   everyone viewing that ticket; only for who may join its topic (its customer, an admin,
--                    the assigned agent or any agent while unassigned), the broadcasts' own audience
--     ticket null    staff viewing any ticket; staff only, like the `staff:viewers` topic
--   It is security definer because the table is private; what it tells is exactly what the caller would
--   have heard on the topics they may join, minted by the server from each viewer's JWT.

create table private.ticket_viewers (
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  seen_at timestamptz not null default now(),
  primary key (ticket_id, user_id)
);
create index ticket_viewers_seen_idx on private.ticket_viewers (seen_at);
alter table private.ticket_viewers enable row level security;  -- no policies: only the functions below

create or replace function public.ticket_signal(ticket_id uuid, signal text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  me uuid := auth.uid();
  topic text := 'ticket:' || ticket_id::text;
  who record;
begin
  if signal is null or signal not in ('viewing', 'left', 'typing') then
    raise exception using errcode = '22023', message = 'unknown signal: expected viewing, left or typing';
  end if;
  if me is null or not private.may_join_ticket_topic(topic) then
    raise exception using errcode = '42501', message = 'you may not signal on this ticket';
  end if;
  select p.display_name, p.role into who from public.profiles p where p.id = me;
  perform realtime.send(jsonb_build_object('user_id', me, 'name', who.display_name, 'role', who.role),
                        signal, topic, true);
  if signal in ('viewing', 'left') and who.role in ('agent', 'admin') then
    perform realtime.send(jsonb_build_object('ticket_id', ticket_id, 'user_id', me, 'name', who.display_name,
                                             'role', who.role),
                          signal, 'staff:viewers', true);
  end if;
  if signal = 'viewing' then
    insert into private.ticket_viewers as v (ticket_id, user_id) values (ticket_signal.ticket_id, me)
    on conflict on constraint ticket_viewers_pkey do update set seen_at = now();
  elsif signal = 'left' then
    delete from private.ticket_viewers v where v.ticket_id = ticket_signal.ticket_id and v.user_id = me;
  end if;
  delete from private.ticket_viewers v where v.seen_at < now() - interval '10 minutes';  -- crashed clients
end;
$$;

create or replace function public.ticket_viewers(ticket uuid default null)
returns table (ticket_id uuid, user_id uuid, name text, role text)
language plpgsql stable security definer set search_path = '' as $$
begin
  if auth.uid() is null then
    raise exception using errcode = '42501', message = 'sign in to see who is viewing';
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

revoke all on table private.ticket_viewers from public, anon, authenticated;
grant select, insert, update, delete on table private.ticket_viewers to service_role;
revoke all on function public.ticket_signal(uuid, text) from public, anon;
grant execute on function public.ticket_signal(uuid, text) to authenticated;
revoke all on function public.ticket_viewers(uuid) from public, anon;
grant execute on function public.ticket_viewers(uuid) to authenticated, service_role;
