-- Explicit grants for the API roles: what the app and the official clients need, nothing more.
--
-- Supabase no longer grants new tables, sequences and functions to anon, authenticated and
-- service_role by default ("default privileges for new entities" off: new projects since 2026-05-30,
-- all projects since 2026-10-30), and 20261124000100 relied on those defaults: on such a project every
-- REST read and write, sync_* call and realtime subscription failed with 42501. Grants are the door,
-- RLS the rule: a role needs both the grant and a policy to see or write a row.
--
-- This file states the whole door for the tables of 20261124000100, so it gives the same result on a
-- project that still has the old defaults (revoke everything, then grant exactly):
--   authenticated  the privileges the RLS policies use: profiles select/update; tickets
--                  select/insert/update/delete; messages select/insert/update; ticket_reads
--                  select/insert/update (upsert); execute on the sync_* pulls.
--   service_role   select/insert/update/delete on the four tables, for server-side admin tools (it
--                  bypasses RLS; the desktop app refuses its key). No sync_* (only the app pulls).
--   anon           nothing.
--   nobody of the API roles: truncate, references, trigger.
--
-- Every migration after this one grants what it creates, in the same file (sql/README.md).

revoke all on public.profiles, public.tickets, public.messages, public.ticket_reads
  from anon, authenticated, service_role;

grant select, update on public.profiles to authenticated;
grant select, insert, update, delete on public.tickets to authenticated;
grant select, insert, update on public.messages to authenticated;
grant select, insert, update on public.ticket_reads to authenticated;

grant select, insert, update, delete on public.profiles, public.tickets, public.messages, public.ticket_reads
  to service_role;

revoke all on function public.sync_horizon(), public.sync_profiles(bigint, bigint, integer),
  public.sync_tickets(bigint, bigint, integer), public.sync_messages(bigint, bigint, integer),
  public.sync_ticket_reads(bigint, bigint, integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_horizon(), public.sync_profiles(bigint, bigint, integer),
  public.sync_tickets(bigint, bigint, integer), public.sync_messages(bigint, bigint, integer),
  public.sync_ticket_reads(bigint, bigint, integer) to authenticated;

-- private: the helpers the policies and triggers call as the signed-in user; never through the API
-- (the schema is not exposed), never for anon
revoke all on schema private from public, anon;
grant usage on schema private to authenticated, service_role;
revoke all on all functions in schema private from public, anon;
grant execute on function private.user_role(uuid), private.is_staff(), private.is_admin(),
  private.ticket_is_closed(uuid) to authenticated, service_role;
revoke all on sequence private.change_seq from public, anon;
grant usage on sequence private.change_seq to authenticated, service_role;
