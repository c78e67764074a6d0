-- review17: the API roles hold the same privileges on a project that still has Supabase's old default privileges
-- as on a new one, and none of them holds TRUNCATE, REFERENCES, TRIGGER or MAINTAIN.
--
-- Why: 20261129000100_api_grants.sql states the door ("revoke everything, then grant exactly", so that a project
-- created before "default privileges for new entities" went off ends up as a new one; "nobody of the API roles:
-- truncate, references, trigger"). Applied with the old defaults (everything `postgres` creates in `public`
-- granted ALL to anon, authenticated and service_role, functions EXECUTE for PUBLIC), later migrations left more:
--   * `public.notifications_id_seq` (20261129000520): USAGE, SELECT and UPDATE (`setval`) for anon and
--     authenticated, UPDATE for service_role; the migration revoked the table, not its identity sequence;
--   * TRUNCATE (which empties a table past RLS), REFERENCES, TRIGGER and, on PostgreSQL 17, MAINTAIN for
--     service_role on sixteen tables whose migrations revoked from anon and authenticated only; and on every
--     project, old or new, on attachments, invitations and canned_reply_files (`grant all ... to service_role`);
--   * EXECUTE on both `public.ticket_signal` for service_role (revoked from public and anon only).
-- No API route reached any of it (PostgREST issues no TRUNCATE, exposes no sequence, and ticket_signal refuses a
-- caller without a user): defence in depth, so that each role has exactly what its migrations describe.
-- tests/test_attack_old_default_privileges.py applies every migration with the old defaults and compares.
--
-- Only revokes: nothing is created, nothing to grant. service_role keeps SELECT, INSERT, UPDATE, DELETE where it
-- had them, and USAGE, SELECT on the sequence (20261129000520).

revoke truncate, references, trigger on all tables in schema public from anon, authenticated, service_role;

do $$
begin
  if current_setting('server_version_num')::int >= 170000 then  -- MAINTAIN is PostgreSQL 17's (Supabase runs 15 too)
    execute 'revoke maintain on all tables in schema public from anon, authenticated, service_role';
  end if;
end $$;

revoke all on sequence public.notifications_id_seq from anon, authenticated;
revoke update on sequence public.notifications_id_seq from service_role;

revoke all on function public.ticket_signal(uuid, text), public.ticket_signal(uuid, text, uuid)
  from public, anon, service_role;
grant execute on function public.ticket_signal(uuid, text), public.ticket_signal(uuid, text, uuid) to authenticated;
