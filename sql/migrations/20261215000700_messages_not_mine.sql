-- `public.messages_not_mine(message_ids, ticket_ids)`: which of these message ids the server holds no message of
-- the caller's under, in the ticket the caller meant. The push asks it when a message insert (ignore duplicates)
-- inserted fewer rows than it sent, and when a single reply was refused (was it delivered before?).
--
-- Why (review17c, LOW): the push asked with a plain REST select of `messages` (RLS applies) and failed, as held
-- by another message, every id it could not read. The user's own reply, delivered by a push whose answer was
-- lost, is skipped by the resend's insert; when its ticket was reassigned away meanwhile, RLS hides the user's own
-- row, so the delivered reply was failed and "Send as a new message" posted it a second time.
--
-- How: a security definer function (RLS does not hide the caller's own rows from it) that answers, for each asked
-- pair (message id, ticket id), whether `public.messages` holds that id with that ticket and `sender_id =
-- auth.uid()`; it returns the ids for which it does not. It reveals nothing new: it says only "this is your own
-- message, in this ticket" about rows the caller sent, and returns an id held by another sender exactly as one
-- that is not there at all, so another user's row gives away neither its content, its ticket, its sender nor even
-- that it exists (the insert's count already told the caller the ids it skipped are taken). Nothing else of any
-- row is returned. At most 100 pairs a call (the push asks in chunks of 100), both arrays of the same length;
-- otherwise 22023 before any row is read. A caller without a user (no `auth.uid()`) is refused with 42501.
--
-- Grants: authenticated only (revoked from public, anon and service_role first).

create or replace function public.messages_not_mine(message_ids uuid[], ticket_ids uuid[])
returns setof uuid
language plpgsql stable security definer set search_path = '' as $$
declare
  caller uuid := auth.uid();
begin
  if caller is null then
    raise exception 'messages_not_mine: sign in first' using errcode = '42501';
  end if;
  if message_ids is null or ticket_ids is null
     or cardinality(message_ids) <> cardinality(ticket_ids) then
    raise exception 'messages_not_mine: message_ids and ticket_ids are two arrays of the same length'
      using errcode = '22023';
  end if;
  if cardinality(message_ids) > 100 then
    raise exception 'messages_not_mine: at most 100 ids a call (% given)', cardinality(message_ids)
      using errcode = '22023';
  end if;
  return query
    select distinct a.id
    from unnest(message_ids, ticket_ids) as a(id, ticket_id)
    where a.id is not null
      and not exists (select 1 from public.messages m
                      where m.id = a.id and m.ticket_id = a.ticket_id and m.sender_id = caller);
end $$;

revoke all on function public.messages_not_mine(uuid[], uuid[]) from public, anon, authenticated, service_role;
grant execute on function public.messages_not_mine(uuid[], uuid[]) to authenticated;
