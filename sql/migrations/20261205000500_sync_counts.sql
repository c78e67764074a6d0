-- The initial sync's progress total in one round trip (issue 15): public.sync_counts(asks).
--
-- The client asks, at the start of an initial sync, how many rows each synced table still has past its cursor
-- (public.sync_count, migration 20261130000500; public.sync_count_scoped for a partial sync, 20261130000510).
-- One request per table made ~15 requests: sent together they opened a connection each, sent in turn they held
-- the first progress figure for 15 round trips. This asks them all in one call.
--
-- asks is a JSON array of at most 64 objects {"table": text, "after_xid": bigint, "after_id": bigint,
-- "since": timestamptz or absent/null}; the answer is the counts in the same order. Each element is answered
-- by public.sync_count (no "since") or public.sync_count_scoped ("since" given) exactly as a call of its own
-- would be: the same table checks (22023 for a name that is not a synced table), and the same function runs as
-- the caller (security invoker), so RLS and the caller's grants apply to every count. Anything else than an
-- array of at most 64 is refused with 22023 before any count runs.
--
-- Grants: execute to authenticated only (anon, public and service_role nothing), like the functions it calls.

create or replace function public.sync_counts(asks jsonb)
returns bigint[] language plpgsql stable security invoker set search_path = '' as $$
declare
  ask jsonb;
  counts bigint[] := '{}';
begin
  if asks is null or pg_catalog.jsonb_typeof(asks) <> 'array' or pg_catalog.jsonb_array_length(asks) > 64 then
    raise exception 'asks: expected an array of at most 64 {table, after_xid, after_id, since}'
      using errcode = '22023';
  end if;
  for ask in select e from pg_catalog.jsonb_array_elements(asks) as e loop
    if pg_catalog.jsonb_typeof(ask) <> 'object' then
      raise exception 'asks: every element is an object' using errcode = '22023';
    end if;
    if ask ->> 'since' is null then
      counts := counts || public.sync_count(ask ->> 'table', (ask ->> 'after_xid')::bigint,
                                            (ask ->> 'after_id')::bigint);
    else
      counts := counts || public.sync_count_scoped(ask ->> 'table', (ask ->> 'since')::timestamptz,
                                                   (ask ->> 'after_xid')::bigint, (ask ->> 'after_id')::bigint);
    end if;
  end loop;
  return counts;
end $$;

revoke all on function public.sync_counts(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.sync_counts(jsonb) to authenticated;
