-- Private realtime channels for a ticket's presence and typing (Supabase Realtime Authorization).
--
-- Topic `ticket:<ticket id>`, joined with `config: {private: true}`. Realtime authorizes a private
-- channel with RLS on `realtime.messages`: at join it checks SELECT (may receive) for the extensions
-- `broadcast` and `presence`, with `realtime.topic()` set to the topic and the caller's JWT claims;
-- on the first send or track it checks INSERT; and it checks again on every `access_token` push.
-- Who may join `ticket:<id>`: the ticket's customer, its assignee (while unassigned, every agent)
-- and admins: exactly who may read the ticket (the tickets_select policy), nobody with the anon key.
--
-- Identity. Realtime's INSERT check sees only the topic, the extension and the caller's claims, never
-- a broadcast's payload or a presence key, so no policy can make a client-sent "typing" or a tracked
-- presence name its real sender: on Supabase any participant could claim to be another. So no client
-- may send or track on a ticket topic at all (there is no INSERT policy): every presence and typing
-- signal is minted by the database in `public.ticket_signal`, which names the caller from
-- `auth.uid()` and broadcasts through `realtime.send` (Broadcast from Database) to the private topic.
-- A forged identity cannot be expressed, on Supabase and on localbase alike, and receivers need no
-- checks beyond ignoring their own signals.
--   signal 'viewing'  sent when a user opens the ticket and every 20 s while it stays open
--   signal 'left'     sent when they close it (a crashed client simply stops renewing 'viewing')
--   signal 'typing'   sent at most every 2 s while they type
-- Each broadcast carries {user_id, name, role} from public.profiles (and the `id` realtime.send adds).

create or replace function private.ticket_of_topic(topic text) returns uuid
language sql immutable set search_path = '' as $$
  select case when topic ~ '^ticket:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
              then substr(topic, 8)::uuid end
$$;

-- who may read the ticket named by a topic, as tickets_select decides (security definer: the
-- caller's own RLS on tickets is not what is asked here, its identity is)
create or replace function private.may_join_ticket_topic(topic text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.tickets t
    where t.id = private.ticket_of_topic(topic)
      and (t.customer_id = auth.uid()
           or private.is_admin()
           or (private.user_role(auth.uid()) = 'agent' and (t.assignee_id = auth.uid() or t.assignee_id is null))))
$$;

create policy ticket_topics_receive on realtime.messages for select to authenticated
  using (extension in ('broadcast', 'presence') and (select private.may_join_ticket_topic(realtime.topic())));

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
end;
$$;

revoke all on function private.ticket_of_topic(text), private.may_join_ticket_topic(text) from public, anon;
grant execute on function private.ticket_of_topic(text), private.may_join_ticket_topic(text) to authenticated;
revoke all on function public.ticket_signal(uuid, text) from public, anon;
grant execute on function public.ticket_signal(uuid, text) to authenticated;
