-- Messages keep the order their author wrote them in, for every reader.
--
-- Until now a message's created_at was now(): the start time of its transaction. A client that
-- flushes its outbox sends many messages in one request, one transaction, so they all got the same
-- created_at, and every reader orders a thread by (created_at, id) with random uuids: the batch came
-- out shuffled (an offline agent's three replies reached the customer as 3, 1, 2).
--
-- Design: created_at stays the server clock, but each message takes its own instant, strictly
-- increasing in the order the rows are inserted within one transaction:
--     created_at = greatest(clock_timestamp(), <the previous message of this transaction> + 1 µs)
-- clock_timestamp() moves during a statement (now() does not); the +1 µs floor makes two rows that
-- fall in the same microsecond, or a clock stepping back mid-transaction, still strictly increase.
-- The previous stamp lives in a transaction-local setting (set_config(..., true)), so it costs no
-- table lookup and vanishes at commit. PostgREST (and localbase) insert a request's JSON array in
-- array order, and the sync engine sends its outbox in FIFO order, so outbox order = created_at order.
-- Readers need no new column and no new ordering rule: order("created_at") is the author's order,
-- and (created_at, id) stays the total order for messages of different transactions that share a
-- microsecond. Messages of one request also never share a created_at any more, so "the newest
-- message" (a ticket's preview, its last_message_at) is well defined.

create or replace function private.messages_before_insert() returns trigger
language plpgsql set search_path = '' as $$
declare
  previous timestamptz := nullif(current_setting('supportchat.last_message_created_at', true), '')::timestamptz;
  stamp timestamptz := clock_timestamp();
begin
  -- the server clock orders threads, whatever the client sent; a previous stamp from the future
  -- could only be forged, never the result of this function: ignore it
  if previous is not null and previous < stamp + interval '1 minute' then
    stamp := greatest(stamp, previous + interval '1 microsecond');
  end if;
  perform set_config('supportchat.last_message_created_at', stamp::text, true);
  new.created_at := stamp;
  new.edited_at := null;
  new.deleted_at := null;
  return new;
end $$;

-- a trigger function, not an API: only the roles that insert messages run it
revoke all on function private.messages_before_insert() from public, anon;
grant execute on function private.messages_before_insert() to authenticated, service_role;
