-- The initial sync's pages of messages as arrays (issue 15 item 2): public.sync_message_rows(after_xid,
-- after_id, max_rows) answers the rows that sync_batch('messages', ...) answers, in the same order and cursor,
-- each as a JSON array of the values the client's cache stores, not as an object:
--   [id, ticket_id, sender_id, content, is_internal, created_at, edited_at, deleted_at, change_xid, change_id]
-- with the timestamps in the cache's one canonical text form (UTC, six fraction digits,
-- `YYYY-MM-DDTHH:MI:SS.ffffff+00:00`).
--
-- Why: a page of 10,000 objects made the client build a million dicts (keys included) and then a million
-- tuples out of them, canonicalizing three timestamps per row in Python; with arrays in the stored order and
-- canonical timestamps the client binds each decoded array as it is, and the answer is ~40 % smaller.
--
-- Security: it runs as the caller (security invoker): the messages' RLS policies and the caller's grants apply
-- exactly as in sync_messages and sync_batch (same rows: the same cursor order, horizon and visibility), and it
-- names only columns sync_messages already returns to the same caller. max_rows is clamped to 1..10,000.
--
-- Grants: execute to authenticated only (anon nothing, service_role does not pull).

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
    select * from public.messages r
    where (r.change_xid, r.change_id) > (coalesce(after_xid, 0), coalesce(after_id, 0))
      and r.change_xid < public.sync_horizon()
    order by r.change_xid, r.change_id
    limit least(greatest(coalesce(max_rows, 1), 1), 10000)
  ) r
$$;

revoke all on function public.sync_message_rows(bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_message_rows(bigint, bigint, integer) to authenticated;
