-- review17: a page of the initial sync's messages ends at 4 MiB of message text.
--
-- Why: `sync_message_rows` (20261204000300) and `sync_batch('messages', ...)` (20261202000300) answer up to 10,000
-- rows as one JSON value, which PostgREST's "Max rows" does not cut (that is their point), with no bound on its
-- size. A message holds up to 10,000 characters and a control character is six bytes in JSON (`\u0001`), so a
-- customer who wrote 10,000 such messages into their own ticket (a few minutes of ordinary REST inserts) made every
-- call build a ~600 MB answer, held whole by the database backend and again by the REST process; a handful of
-- calls at once exhausted the server's memory, for every user of the project. A table read through PostgREST is
-- cut at "Max rows" (1,000 rows, ~60 MB at worst), a tenth of that.
--
-- How: the same rows, in the same cursor order, but a page stops after the row that brings its message text
-- (`octet_length(content)`, read from the TOAST header without detoasting) to 4 MiB or more: at least one row,
-- at most 4 MiB + one message of text (~24 MB of JSON at worst). Ordinary pages are not cut (10,000 messages
-- of up to ~400 bytes fit). A cut page is an ordinary short page: the client reads on from its last row's cursor
-- until a page comes back empty (sync/pull.py: "a short page proves nothing"), so no row is skipped.
-- The other tables of sync_batch keep their query: their rows are small and bounded by their constraints
-- (a ticket's subject 200 characters, a profile's name 100), 10,000 of them a few MB.
--
-- Security: both stay security invoker with an empty search_path; RLS and the caller's grants decide the rows
-- exactly as before. Grants restated: execute to authenticated only.

create or replace function public.sync_message_rows(after_xid bigint default 0, after_id bigint default 0,
                                                    max_rows integer default 10000)
returns json language sql stable security invoker set search_path = '' as $$
  select coalesce(json_agg(json_build_array(
           r.id, r.ticket_id, r.sender_id, r.content, r.is_internal,
           pg_catalog.to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           pg_catalog.to_char(r.edited_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           pg_catalog.to_char(r.deleted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           r.change_xid, r.change_id) order by r.change_xid, r.change_id), '[]'::json)
  from (
    select r.*,
           pg_catalog.sum(pg_catalog.octet_length(r.content)) over (
             order by r.change_xid, r.change_id rows between unbounded preceding and current row)
           - pg_catalog.octet_length(r.content) as text_before
    from (
      select * from public.messages r
      where (r.change_xid, r.change_id) > (coalesce(after_xid, 0), coalesce(after_id, 0))
        and r.change_xid < public.sync_horizon()
      order by r.change_xid, r.change_id
      limit least(greatest(coalesce(max_rows, 1), 1), 10000)
    ) r
  ) r
  where r.text_before < 4194304
$$;

create or replace function public.sync_batch(table_name text, after_xid bigint default 0, after_id bigint default 0,
                                             max_rows integer default 10000)
returns json language plpgsql stable security invoker set search_path = '' as $$
declare
  page json;
begin
  if table_name is null or table_name not in ('profiles', 'tickets', 'messages', 'ticket_reads') then
    raise exception 'not a table sync_batch serves: %', table_name using errcode = '22023';
  end if;
  if table_name = 'messages' then
    -- the rows of the page as objects (the table's columns, as `select *` names them), cut as sync_message_rows is
    select coalesce(json_agg(p.r order by p.x, p.i), '[]'::json) into page
    from (
      select r, r.change_xid as x, r.change_id as i,
             pg_catalog.sum(pg_catalog.octet_length(r.content)) over (
               order by r.change_xid, r.change_id rows between unbounded preceding and current row)
             - pg_catalog.octet_length(r.content) as text_before
      from (
        select * from public.messages r
        where (r.change_xid, r.change_id) > (coalesce(sync_batch.after_xid, 0), coalesce(sync_batch.after_id, 0))
          and r.change_xid < public.sync_horizon()
        order by r.change_xid, r.change_id
        limit least(greatest(coalesce(sync_batch.max_rows, 1), 1), 10000)
      ) r
    ) p
    where p.text_before < 4194304;
    return page;
  end if;
  execute pg_catalog.format(
    'select coalesce(json_agg(r order by r.change_xid, r.change_id), ''[]''::json) from ('
    'select * from public.%I r where (r.change_xid, r.change_id) > ($1, $2)'
    ' and r.change_xid < public.sync_horizon() order by r.change_xid, r.change_id limit $3) r', table_name)
    into page
    using coalesce(after_xid, 0), coalesce(after_id, 0), least(greatest(coalesce(max_rows, 1), 1), 10000);
  return page;
end $$;

revoke all on function public.sync_message_rows(bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_message_rows(bigint, bigint, integer) to authenticated;
revoke all on function public.sync_batch(text, bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_batch(text, bigint, bigint, integer) to authenticated;
