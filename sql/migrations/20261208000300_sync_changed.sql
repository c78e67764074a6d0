-- Which synced tables have rows past a client's cursors, in one cheap request (issue 15 item 4):
-- public.sync_changed(cursors).
--
-- Every client pulls on a timer (and after each realtime resubscription) although realtime already brought
-- most changes; a pull that finds nothing was one empty sync_<table> page per table (5 requests for a
-- customer, 15 for staff). With 50 clients that was most of the stack's requests (bench/README.md, e2e,
-- eighth pass). The client now asks this first and pulls only the tables named. sync_counts
-- (20261205000500) answers the same question but costs ~30 ms a call (dynamic SQL planned per table and per
-- call, the catalog checks, a full count): this is one static statement per table, each the first row past
-- the cursor in the (change_xid, change_id) index's order, as the pages read it (a range scan from the cursor
-- whatever plan PostgreSQL settles on; the ordered form measured 9.1 ms against 11.9 for a bare EXISTS, and the
-- five pages it replaces for a customer 15.4 ms, in one session on a desk of 40 customers with 200 messages each).
--
-- cursors is a JSON object {"<table>": [after_xid, after_id], ...} of at most 64 entries; the answer names
-- the tables that have at least one row past the cursor that the caller may select. It ignores the horizon
-- and the partial-sync scope on purpose: its rows are a superset of what that table's pages (sync_<table>,
-- sync_<table>_scoped) return, so a table it does not name is one whose next page would be empty, and a table
-- it names whose rows the page does not return yet only costs that page. A name that is not a synced table,
-- a value that is not an array of two integers, or anything but an object of at most 64 entries is refused
-- with 22023 before any table is read.
--
-- Security invoker: each table's RLS policies and the caller's grants apply as in sync_<table> (a customer
-- asking a staff table is shown no rows, so it is never named), so a caller learns only whether rows they could
-- pull exist.
-- Grants: execute to authenticated only (anon, public and service_role nothing), like the pulls.

create or replace function public.sync_changed(cursors jsonb)
returns text[] language plpgsql stable security invoker set search_path = '' as $$
declare
  entry record;
  x bigint;
  i bigint;
  past boolean;
  changed text[] := '{}';
begin
  if cursors is null or pg_catalog.jsonb_typeof(cursors) <> 'object'
     or (select count(*) from pg_catalog.jsonb_object_keys(cursors)) > 64 then
    raise exception 'cursors: expected an object of at most 64 {"table": [after_xid, after_id]}'
      using errcode = '22023';
  end if;
  for entry in select e.key, e.value from pg_catalog.jsonb_each(cursors) as e loop
    if pg_catalog.jsonb_typeof(entry.value) <> 'array' or pg_catalog.jsonb_array_length(entry.value) <> 2
       or pg_catalog.jsonb_typeof(entry.value -> 0) <> 'number'
       or pg_catalog.jsonb_typeof(entry.value -> 1) <> 'number'
       -- whole, not negative, within bigint: a fraction or 1e30 would fail the cast below with another code
       or (entry.value ->> 0) !~ '^[0-9]{1,18}$' or (entry.value ->> 1) !~ '^[0-9]{1,18}$' then
      raise exception 'cursors: % is not [after_xid, after_id]', entry.key using errcode = '22023';
    end if;
    if entry.key not in ('profiles', 'tickets', 'messages', 'attachments', 'ticket_reads', 'message_revisions', 'tags', 'ticket_tags', 'canned_replies', 'canned_reply_files', 'macros', 'saved_views', 'customer_notes', 'mentions', 'ticket_sla') then
      raise exception 'not a synced table: %', entry.key using errcode = '22023';
    end if;
  end loop;
  for entry in select e.key, e.value from pg_catalog.jsonb_each(cursors) as e loop
    x := (entry.value ->> 0)::bigint;
    i := (entry.value ->> 1)::bigint;
    case entry.key
      when 'profiles' then past := exists (select 1 from public.profiles r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'tickets' then past := exists (select 1 from public.tickets r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'messages' then past := exists (select 1 from public.messages r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'attachments' then past := exists (select 1 from public.attachments r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_reads' then past := exists (select 1 from public.ticket_reads r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'message_revisions' then past := exists (select 1 from public.message_revisions r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'tags' then past := exists (select 1 from public.tags r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_tags' then past := exists (select 1 from public.ticket_tags r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'canned_replies' then past := exists (select 1 from public.canned_replies r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'canned_reply_files' then past := exists (select 1 from public.canned_reply_files r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'macros' then past := exists (select 1 from public.macros r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'saved_views' then past := exists (select 1 from public.saved_views r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'customer_notes' then past := exists (select 1 from public.customer_notes r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'mentions' then past := exists (select 1 from public.mentions r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_sla' then past := exists (select 1 from public.ticket_sla r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
    end case;
    if past then
      changed := changed || entry.key;
    end if;
  end loop;
  return changed;
end $$;

revoke all on function public.sync_changed(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.sync_changed(jsonb) to authenticated;
