-- review16b's findings on this session's migrations:
--
-- 1. Partial sync lost internal notes on old tickets. 20261214000210 stopped internal notes from touching the
--    ticket row (its customer saw when staff wrote them), so a note no longer brings its ticket into the scope
--    of a partial sync (20261130000510: open or pending, or last_message_at >= since): a teammate whose cache
--    holds an old closed ticket, or who was offline when the note was written, never pulled the note (nor
--    saw the @mention it carries). The scoped pulls of messages and attachments now also return internal
--    notes created since the scope's bound (and their files), whatever their ticket: a note is in scope by
--    its own time, as a public message is by the last_message_at it moves. The client keeps such a row under
--    its ticket as it keeps any pulled row; the ticket, if not cached, is fetched when opened (a mention's
--    link opens it). RLS still decides: a customer sees no internal note, here as anywhere.
--    sync_count_scoped counts the same rows. Bodies restated from 20261130000510 with that one condition.
-- 2. invitations.created_at was the one user-writable timestamp 20261214000200's audit missed: an admin could
--    store 'infinity' or '20000-01-01'. The same 1970..2999 range as the other columns; rows already out of
--    range are set to now() first.
--
-- Grants: the replaced functions keep theirs (create or replace); restated below. The constraint needs none.

create or replace function public.sync_messages_scoped(since timestamptz, after_xid bigint default 0,
                                                       after_id bigint default 0, max_rows integer default 1000)
returns setof public.messages language sql stable as $$
  select * from public.messages r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and ((r.is_internal and r.created_at >= since)
         or r.ticket_id in (select t.id from public.tickets t
                            where t.status in ('open', 'pending') or t.last_message_at >= since))
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_attachments_scoped(since timestamptz, after_xid bigint default 0,
                                                          after_id bigint default 0, max_rows integer default 1000)
returns setof public.attachments language sql stable as $$
  select * from public.attachments r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and (r.message_id in (select m.id from public.messages m where m.is_internal and m.created_at >= since)
         or r.ticket_id in (select t.id from public.tickets t
                            where t.status in ('open', 'pending') or t.last_message_at >= since))
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_count_scoped(table_name text, since timestamptz,
                                                    after_xid bigint default 0, after_id bigint default 0)
returns bigint language plpgsql stable security invoker set search_path = '' as $$
declare
  n bigint;
begin
  if table_name is null or table_name not in ('tickets', 'messages', 'ticket_reads', 'attachments') then
    raise exception 'not a table of the partial sync: %', table_name using errcode = '22023';
  end if;
  if table_name = 'tickets' then
    select count(*) into n from public.tickets r
    where (r.change_xid, r.change_id) > (coalesce(after_xid, 0), coalesce(after_id, 0))
      and r.change_xid < public.sync_horizon()
      and (r.status in ('open', 'pending') or r.last_message_at >= since);
  else
    execute pg_catalog.format(
      'select count(*) from public.%I r where (r.change_xid, r.change_id) > ($1, $2)'
      ' and r.change_xid < public.sync_horizon() and (%s r.ticket_id in (select t.id from public.tickets t'
      ' where t.status in (''open'', ''pending'') or t.last_message_at >= $3))', table_name,
      case table_name
        when 'messages' then '(r.is_internal and r.created_at >= $3) or'
        when 'attachments' then 'r.message_id in (select m.id from public.messages m'
                                ' where m.is_internal and m.created_at >= $3) or'
        else '' end)
      into n using coalesce(after_xid, 0), coalesce(after_id, 0), since;
  end if;
  return n;
end $$;

revoke all on function public.sync_messages_scoped(timestamptz, bigint, bigint, integer),
  public.sync_attachments_scoped(timestamptz, bigint, bigint, integer),
  public.sync_count_scoped(text, timestamptz, bigint, bigint)
  from public, anon, authenticated, service_role;
grant execute on function public.sync_messages_scoped(timestamptz, bigint, bigint, integer),
  public.sync_attachments_scoped(timestamptz, bigint, bigint, integer),
  public.sync_count_scoped(text, timestamptz, bigint, bigint)
  to authenticated;

update public.invitations set created_at = now()
where created_at < '1970-01-01 00:00:00+00' or created_at >= '3000-01-01 00:00:00+00';
alter table public.invitations add constraint invitations_created_at_range
  check (created_at >= '1970-01-01 00:00:00+00' and created_at < '3000-01-01 00:00:00+00');
