-- A digest of the tickets the caller may see (issue 15: a desk of 100,000 tickets): public.visible_tickets_digest().
--
-- After every pull a client compares the tickets it caches with those the server shows it, and drops the ones it
-- may no longer see (reassigned to another agent, deleted by an admin). It did so by listing every visible ticket
-- id, keyset-paged a thousand at a time: an admin of a 100,000-ticket desk asked a hundred pages after every pull
-- (every poll, every client), to find, nearly always, that nothing had gone. Now it asks for this digest first
-- and lists the ids only when the digest differs from the one of its own cached ids: one small answer when
-- nothing changed.
--
-- The digest of a set of uuids: their count, the XOR of their first 64 bits and of their last 64 bits (as signed
-- bigints), and the sum of their first 64 bits (numeric, exact). Order-free, so no sort; two different sets give
-- the same digest only by a collision of all four, and a collision can only make a client keep a ticket it saw
-- before a bit longer, never show it one it may not see (the digest is a question about the client's own ids).
--
-- Security invoker: the tickets' RLS decides what is counted, as for the listing it replaces. Grants: execute to
-- authenticated only (anon, public and service_role nothing), like the pulls.
--
-- Answer: {"count": <int>, "xor_hi": "<bigint>", "xor_lo": "<bigint>", "sum_hi": "<numeric>"}.

create or replace function public.visible_tickets_digest()
returns jsonb language sql stable security invoker set search_path = '' as $$
  select pg_catalog.jsonb_build_object(
    'count', pg_catalog.count(*),
    'xor_hi', coalesce(pg_catalog.bit_xor(h.hi), 0)::text,
    'xor_lo', coalesce(pg_catalog.bit_xor(h.lo), 0)::text,
    'sum_hi', coalesce(pg_catalog.sum(h.hi), 0)::text)
  from public.tickets t,
    lateral (
      select ('x' || pg_catalog.substr(pg_catalog.replace(t.id::text, '-', ''), 1, 16))::bit(64)::bigint as hi,
             ('x' || pg_catalog.substr(pg_catalog.replace(t.id::text, '-', ''), 17, 16))::bit(64)::bigint as lo
    ) h
$$;

revoke all on function public.visible_tickets_digest() from public, anon, authenticated, service_role;
grant execute on function public.visible_tickets_digest() to authenticated;
