-- "Typing" from a device that does not know its user's newest message (issue 13's presence, follow-up).
--
-- Since migration 20261202000500 a typing signal names the signaller's newest message in the ticket
-- (`after`, null: none), and a receiver drops a signal as stale when it holds a newer message from that
-- person written shortly before the signal. A device still in its first sync may not hold its user's own
-- newest message yet (written on another device, or before the cache was rebuilt): it would send null, and
-- the receiver, holding that message, dropped every signal it sent for up to 30 seconds.
--
-- Such a device now calls the two-argument form, and a typing signal from it carries no `after` at all: a
-- receiver treats a signal without `after` as fresh, as it always did for older clients. Older clients
-- call the same form and did not know `after` either, so nothing changes for them. `at`, the sender's name
-- and role, and every check are as in migration 20261202000500; viewing and leaving go through the
-- three-argument form unchanged.
--
-- public.ticket_signal(ticket_id, signal)   typing without `after`; viewing / left as before

create or replace function public.ticket_signal(ticket_id uuid, signal text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  me uuid := auth.uid();
  topic text := 'ticket:' || ticket_id::text;
  who record;
begin
  if signal is distinct from 'typing' then
    perform public.ticket_signal(ticket_id, signal, null::uuid);
    return;
  end if;
  if me is null or not private.may_join_ticket_topic(topic) then
    raise exception using errcode = '42501', message = 'you may not signal on this ticket';
  end if;
  select p.display_name, p.role into who from public.profiles p where p.id = me;
  perform realtime.send(jsonb_build_object('user_id', me, 'name', who.display_name, 'role', who.role,
                                           'at', clock_timestamp()),
                        signal, topic, true);
end;
$$;

revoke all on function public.ticket_signal(uuid, text) from public, anon;
grant execute on function public.ticket_signal(uuid, text) to authenticated;
