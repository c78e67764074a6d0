-- Which synced tables changed, and how far a client's cursors may move when nothing did (issue 15 item 4):
-- public.sync_status(cursors).
--
-- A cursor only moved with the rows a pull returned, so a client's cursor stayed at the last row *it* may see:
-- every row written since by anyone it may not see (another customer's messages, staff rows) lay past it, and
-- every later question scanned them all again through RLS (sync_changed's first-row-past-the-cursor, or the
-- table's first page) until a visible row came — for a customer whose ticket is quiet, the whole desk's traffic
-- since, at every poll. This answers sync_changed's question (the same cursors, validation and errors: it calls
-- it) together with the snapshot's horizon, sync_horizon(): every transaction whose id is below it had ended
-- when the question's snapshot was taken, so a table sync_changed did not name has no row the caller may see
-- with a change_xid below it, and its cursor may move to (horizon, 0). A row of a transaction still open then
-- has a change_xid at or above the horizon and stays past the moved cursor (gap-free, as the pages are); a row
-- that becomes visible later without being written again was already skipped by the design before (the next
-- visible row moved the cursor past it too): tickets that become visible are fetched by id (backfill).
--
-- One statement: sync_changed's queries and the horizon read the same snapshot (stable functions take no
-- snapshot of their own), so the horizon is the one the answer was computed under.
--
-- Answer: {"changed": ["<table>", ...], "horizon": <bigint>}.
-- Security invoker (each table's RLS and grants apply, as in sync_changed). Grants: execute to authenticated
-- only (anon, public and service_role nothing), like sync_changed and the pulls.

create or replace function public.sync_status(cursors jsonb)
returns jsonb language sql stable security invoker set search_path = '' as $$
  select pg_catalog.jsonb_build_object(
    'changed', pg_catalog.to_jsonb(public.sync_changed(cursors)),
    'horizon', public.sync_horizon())
$$;

revoke all on function public.sync_status(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.sync_status(jsonb) to authenticated;
