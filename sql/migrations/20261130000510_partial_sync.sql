-- Partial sync (issue 15): a client may cache only the tickets that are open or pending plus those with
-- activity in the last N days, and fetch older threads on demand (opened by id, or found by a search on
-- the server). What this file adds:
--
--   public.sync_<table>_scoped(since, after_xid, after_id, max_rows) for tickets, messages, ticket_reads
--     and attachments: the rows sync_<table> would return (same cursor, horizon, order and page cap),
--     restricted to tickets in scope: status open or pending, or last_message_at >= since. A ticket that
--     enters the scope later (reopened, a new message) is changed by that very write, so the scoped
--     tickets pull returns it and the client fetches its older rows by ticket id (its backfill).
--   public.sync_count_scoped(table_name, since, after_xid, after_id): sync_count (20261130000500) for the
--     scoped pulls, for the progress bar of a partial initial sync.
--   public.search_messages(query, max_rows): full-text search on the server over ticket subjects and
--     message contents, for what a partial cache does not hold. websearch_to_tsquery parses the text
--     (no syntax errors from user input: quotes, or, -word are its grammar), 'simple' configuration (no
--     stemming: the language of a desk is not known). Hits: a ticket's subject, or a message (newest first,
--     deleted messages never: their content is '' anyway), with a short highlighted snippet.
--
-- All of them are security invoker (the default for these sql functions): the tickets/messages/ticket_reads/
-- attachments RLS policies apply as in every pull, so a customer finds only their own tickets and never an
-- internal note, an agent only what the agent policy shows. Input limits: a query is at most 200
-- characters (22023 otherwise), max_rows is clamped to 1..200 (search) and 1..1000 (pulls).
--
-- Indexes: GIN over to_tsvector('simple', ...) of message contents and ticket subjects (the search), and
-- tickets by (status, last_message_at) for the scope's subquery.
--
-- Grants: execute on every function to authenticated only; anon, public and service_role nothing.

create index messages_content_search_idx on public.messages using gin (to_tsvector('simple', content));
create index tickets_subject_search_idx on public.tickets using gin (to_tsvector('simple', subject));
create index tickets_scope_idx on public.tickets (status, last_message_at);

create or replace function public.sync_tickets_scoped(since timestamptz, after_xid bigint default 0,
                                                      after_id bigint default 0, max_rows integer default 1000)
returns setof public.tickets language sql stable as $$
  select * from public.tickets r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and (r.status in ('open', 'pending') or r.last_message_at >= since)
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_messages_scoped(since timestamptz, after_xid bigint default 0,
                                                       after_id bigint default 0, max_rows integer default 1000)
returns setof public.messages language sql stable as $$
  select * from public.messages r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and r.ticket_id in (select t.id from public.tickets t
                        where t.status in ('open', 'pending') or t.last_message_at >= since)
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_ticket_reads_scoped(since timestamptz, after_xid bigint default 0,
                                                           after_id bigint default 0, max_rows integer default 1000)
returns setof public.ticket_reads language sql stable as $$
  select * from public.ticket_reads r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and r.ticket_id in (select t.id from public.tickets t
                        where t.status in ('open', 'pending') or t.last_message_at >= since)
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_attachments_scoped(since timestamptz, after_xid bigint default 0,
                                                          after_id bigint default 0, max_rows integer default 1000)
returns setof public.attachments language sql stable as $$
  select * from public.attachments r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
    and r.ticket_id in (select t.id from public.tickets t
                        where t.status in ('open', 'pending') or t.last_message_at >= since)
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
      ' and r.change_xid < public.sync_horizon() and r.ticket_id in (select t.id from public.tickets t'
      ' where t.status in (''open'', ''pending'') or t.last_message_at >= $3)', table_name)
      into n using coalesce(after_xid, 0), coalesce(after_id, 0), since;
  end if;
  return n;
end $$;

create or replace function public.search_messages(query text, max_rows integer default 50)
returns table (ticket_id uuid, message_id uuid, subject text, snippet text, created_at timestamptz)
language plpgsql stable security invoker set search_path = '' as $$
declare
  q tsquery;
  cap integer := least(greatest(coalesce(max_rows, 50), 1), 200);
begin
  if query is null or length(query) > 200 then
    raise exception 'a search is 1 to 200 characters' using errcode = '22023';
  end if;
  q := pg_catalog.websearch_to_tsquery('simple'::regconfig, query);
  if pg_catalog.numnode(q) = 0 then
    return;  -- nothing searchable (blank, or only punctuation)
  end if;
  return query
    (select t.id, null::uuid, t.subject,
            pg_catalog.ts_headline('simple'::regconfig, t.subject, q, 'StartSel=[, StopSel=], MaxWords=12, MinWords=4'),
            t.last_message_at
     from public.tickets t
     where pg_catalog.to_tsvector('simple'::regconfig, t.subject) @@ q
     order by t.last_message_at desc
     limit cap)
    union all
    (select m.ticket_id, m.id, t.subject,
            pg_catalog.ts_headline('simple'::regconfig, m.content, q, 'StartSel=[, StopSel=], MaxWords=12, MinWords=4'),
            m.created_at
     from public.messages m join public.tickets t on t.id = m.ticket_id
     where pg_catalog.to_tsvector('simple'::regconfig, m.content) @@ q and m.deleted_at is null
     order by m.created_at desc
     limit cap);
end $$;

revoke all on function public.sync_tickets_scoped(timestamptz, bigint, bigint, integer),
  public.sync_messages_scoped(timestamptz, bigint, bigint, integer),
  public.sync_ticket_reads_scoped(timestamptz, bigint, bigint, integer),
  public.sync_attachments_scoped(timestamptz, bigint, bigint, integer),
  public.sync_count_scoped(text, timestamptz, bigint, bigint),
  public.search_messages(text, integer)
  from public, anon, authenticated, service_role;
grant execute on function public.sync_tickets_scoped(timestamptz, bigint, bigint, integer),
  public.sync_messages_scoped(timestamptz, bigint, bigint, integer),
  public.sync_ticket_reads_scoped(timestamptz, bigint, bigint, integer),
  public.sync_attachments_scoped(timestamptz, bigint, bigint, integer),
  public.sync_count_scoped(text, timestamptz, bigint, bigint),
  public.search_messages(text, integer)
  to authenticated;
