-- "Typing" that arrives after the message it was about (issue 13's receipts and presence follow-up).
--
-- A client signals "typing" (public.ticket_signal) at its first keystroke and then every 2 s while its user
-- types; the message itself goes out by a separate request. The two race: a signal sent just before the
-- message can commit, or reach the other side, after it, and the other side then showed "… is typing" for
-- a few seconds after the message had arrived (its indicator ends when a message from that user arrives).
--
-- Now the typing signal names the message it comes after: `after` is the id of the signaller's newest
-- message in the ticket as their device knew it when they typed (null: none yet). A receiver that already
-- holds a newer message from that user knows the signal is stale and ignores it; a receiver that does not
-- know `after` yet (not arrived, or an internal note it may not read) treats the signal as fresh. The id is
-- a hint about the caller's own typing indicator and nothing else: it is passed through as a uuid, never
-- looked up (no row is read or revealed by it), and a client lying about it can only hide or show its own
-- "typing". `at` is the server's clock when the signal was minted: a newer message only makes a signal stale
-- when it was written around that time (a device whose cache lags names an older message without its
-- signal being about the newer one). Everything else is as in migration 20261201000400: the database names
-- the sender from the JWT.
--
-- public.ticket_signal(ticket_id, signal, after)   the signal with `after` in its payload
-- public.ticket_signal(ticket_id, signal)          unchanged for older clients (after = null)

create or replace function public.ticket_signal(ticket_id uuid, signal text, after uuid) returns void
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
  perform realtime.send(jsonb_build_object('user_id', me, 'name', who.display_name, 'role', who.role)
                          || case when signal = 'typing'
                               then jsonb_build_object('after', after, 'at', clock_timestamp()) else '{}' end,
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

create or replace function public.ticket_signal(ticket_id uuid, signal text) returns void
language sql security definer set search_path = '' as $$
  select public.ticket_signal(ticket_id, signal, null::uuid);
$$;

revoke all on function public.ticket_signal(uuid, text, uuid) from public, anon;
grant execute on function public.ticket_signal(uuid, text, uuid) to authenticated;
revoke all on function public.ticket_signal(uuid, text) from public, anon;
grant execute on function public.ticket_signal(uuid, text) to authenticated;
