-- The collision guard (issue 14, item 5): the server decides who takes a ticket, and staff see who is
-- viewing which ticket from the inbox.
--
-- public.take_ticket(ticket)   "take" = assign to me only if still unassigned, decided under the row's lock,
--   so of two agents taking the same ticket at once exactly one wins; the other is told who did. Returns one
--   row (outcome, assignee_id, assignee_name):
--     'taken'          it was unassigned and is now the caller's
--     'already_yours'  it was the caller's already (a resend after a lost answer lands here: idempotent)
--     'lost'           someone else holds it; assignee_id/assignee_name say who
--   Customers and anon are refused (42501); an unknown ticket is 'P0002'. It is security definer because the
--   loser must learn who won although RLS hides a ticket assigned to another agent from them; what a staff
--   caller learns is only the holder of a ticket id they already know (ids are random uuids that reach a
--   client only with the ticket itself), never its content. An admin who wants to hand a ticket over uses an
--   ordinary update (admins assign anyone); "take" never overrides anybody.
--
-- Inbox viewers: public.ticket_signal (20261129000300) is replaced to also broadcast a staff member's
--   'viewing' and 'left' signals, with the ticket id, to the private topic `staff:viewers`, which only staff
--   may join (policy below). Customers' viewing stays on the ticket's own topic. As on ticket topics, no
--   client may send on it (no INSERT policy): every signal is minted here from auth.uid(), so nobody can
--   appear to view a ticket as someone else. Staff thereby learn that a colleague views ticket <uuid>
--   even for a ticket RLS hides from them: an id and a colleague's name, no ticket content.

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
end;
$$;

create policy staff_viewers_receive on realtime.messages for select to authenticated
  using (extension = 'broadcast' and realtime.topic() = 'staff:viewers' and (select private.is_staff()));

revoke all on function public.take_ticket(uuid) from public, anon;
grant execute on function public.take_ticket(uuid) to authenticated, service_role;
revoke all on function public.ticket_signal(uuid, text) from public, anon;
grant execute on function public.ticket_signal(uuid, text) to authenticated;
