-- Larger pages for the initial sync (issue 15): public.sync_batch(table_name, after_xid, after_id, max_rows)
-- answers the rows that the table's sync_<table> pages would return one after another, up to 10,000 at a time,
-- as one JSON array.
--
-- Why: every call of sync_messages evaluates the messages' RLS policy once, and its
-- `ticket_id in (select t.id from public.tickets t)` builds the set of tickets the caller sees before the
-- first row: for an admin of 100,000 tickets that is ~100 ms of the server's CPU per call, so a page of
-- 1,000 rows (sync_<table>'s cap, and the "Max rows" every Supabase project applies to a set-returning
-- function) cost the server about as much as the client spent storing it. One call per 10,000 rows pays it a
-- tenth as often. The answer is a single JSON value (not a set), so the project's "Max rows" does not cut it.
--
-- Security: it runs as the caller (security invoker): the table's RLS policies and the caller's grants apply
-- exactly as in sync_<table> (same rows, same columns: `select *`, the cursor order and the horizon), so it
-- shows nobody anything sync_<table> would not. Only the tables whose sync_<table> is that plain cursor read
-- are accepted (the list below; change both together); any other name is refused (22023) before any SQL is
-- built from it, and the name is quoted with %I anyway. max_rows is clamped to 1..10,000, well inside the
-- authenticated role's statement timeout for an admin's pages.
--
-- Grants: execute to authenticated only (anon nothing, service_role does not pull).

create or replace function public.sync_batch(table_name text, after_xid bigint default 0, after_id bigint default 0,
                                             max_rows integer default 10000)
returns json language plpgsql stable security invoker set search_path = '' as $$
declare
  page json;
begin
  if table_name is null or table_name not in ('profiles', 'tickets', 'messages', 'ticket_reads') then
    raise exception 'not a table sync_batch serves: %', table_name using errcode = '22023';
  end if;
  execute pg_catalog.format(
    'select coalesce(json_agg(r order by r.change_xid, r.change_id), ''[]''::json) from ('
    'select * from public.%I r where (r.change_xid, r.change_id) > ($1, $2)'
    ' and r.change_xid < public.sync_horizon() order by r.change_xid, r.change_id limit $3) r', table_name)
    into page
    using coalesce(after_xid, 0), coalesce(after_id, 0), least(greatest(coalesce(max_rows, 1), 1), 10000);
  return page;
end $$;

revoke all on function public.sync_batch(text, bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_batch(text, bigint, bigint, integer) to authenticated;
