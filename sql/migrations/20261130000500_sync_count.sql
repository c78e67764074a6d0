-- How many rows a pull still has to bring (issue 15): the app's progress bar during the initial sync.
--
-- public.sync_count(table_name, after_xid, after_id) counts the rows of a synced table past a client's
-- cursor and below the horizon, exactly what the table's sync_<table> pages would return one after
-- another. It runs as the caller (security invoker): the table's RLS policies and the caller's grants
-- apply as they do to sync_<table>, so a user learns nothing about rows they cannot pull, and a table the
-- caller has no SELECT grant on fails with 42501. Only tables of `public` that carry the change cursor
-- (change_xid, change_id) and have a sync_<table> function are counted; any other name is refused
-- (22023) before any SQL is built from it, and the name is quoted with %I anyway.
--
-- One count per table at the start of an initial sync (the client adds what it has cached, so a resumed
-- sync shows where it is): for an admin of a million messages a single scan of the cursor index with
-- the RLS check, well inside the authenticated role's statement timeout.
--
-- Grants: execute to authenticated only (anon nothing, service_role does not pull).

create or replace function public.sync_count(table_name text, after_xid bigint default 0,
                                             after_id bigint default 0)
returns bigint language plpgsql stable security invoker set search_path = '' as $$
declare
  n bigint;
begin
  if table_name is null or not exists (
       select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace ns on ns.oid = p.pronamespace
       where ns.nspname = 'public' and p.proname = 'sync_' || table_name)
     or (select count(*) from pg_catalog.pg_attribute a
         where a.attrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', table_name))
           and a.attname in ('change_xid', 'change_id') and not a.attisdropped) <> 2 then
    raise exception 'not a synced table: %', table_name using errcode = '22023';
  end if;
  execute pg_catalog.format(
    'select count(*) from public.%I r where (r.change_xid, r.change_id) > ($1, $2)'
    ' and r.change_xid < public.sync_horizon()', table_name)
    into n using coalesce(after_xid, 0), coalesce(after_id, 0);
  return n;
end $$;

revoke all on function public.sync_count(text, bigint, bigint) from public, anon, authenticated, service_role;
grant execute on function public.sync_count(text, bigint, bigint) to authenticated;
