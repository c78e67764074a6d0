-- A token's session is looked up by its primary key, not among all of its user's sessions (issue 15 item 3, and a
-- denial of service closed).
--
-- Why: `private.session_is_live()`, `is_staff()`, `is_admin()` and `user_role(uid)` (20261213000100) found the
-- token's session with `s.user_id = uid and s.id::text = <session_id claim>`: the user's index, then every session of
-- that user compared as text (the cast kept a claim that is no UUID from failing the statement). The cost grew with the
-- user's sessions, in every statement whose policies ask for a staff role, and once per subscriber and change in
-- realtime's RLS checks. Measured with the realtime checker's own function on a new message (bench
-- realtime_rls_check's statement), an agent with 250 sessions: 101 µs per subscriber identity, 38 after this change (a
-- customer's check, which never asks for a role: 22). Anyone can make sessions (each sign-in is one), so one account
-- signing in thousands of times slowed every check that asked about it, and in realtime every delivery of every
-- change it subscribes to. realtime_latency_500 (250 sessions per user) went from p99 164-194 ms to 97-99 in an A/B.
--
-- How: the claim becomes a UUID only when it is one in canonical text (lowercase hex, hyphenated: exactly what
-- `uuid::text` prints), otherwise null (matches nothing, fails nothing), and the session is found by `auth.sessions`'
-- primary key, then checked to be the caller's (`user_id`) and unexpired (`not_after`), as before.
--
-- Same answers, exactly: `s.id::text = c` holds only when `c` is the canonical text of `s.id`; for such a `c`,
-- `c::uuid = s.id` holds for the same row, and for any other `c` (another spelling of a UUID that `uuid_in` would
-- accept: uppercase, braces, no hyphens; or no UUID) the old comparison found nothing and the new one compares with
-- null. tests/test_live_sessions.py asks every helper with those spellings.
--
-- Only the bodies change (CREATE OR REPLACE keeps owner, grants, volatility and settings: security definer, empty
-- search_path); nothing is created, so nothing needs a grant. The invitation triggers' "every other session of this
-- user" (20261215000120) is a scan by user by nature, and runs once per acceptance: left.

create or replace function private.session_is_live() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
    from (select auth.jwt() ->> 'session_id' as sid) c
    join auth.sessions s
      on s.id = (case when c.sid ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                      then c.sid::uuid end)
     and s.user_id = auth.uid() and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

create or replace function private.is_staff() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
    from (select auth.uid() as uid, auth.jwt() ->> 'session_id' as sid) c
    join public.profiles p on p.id = c.uid and p.role in ('agent', 'admin')
    join auth.sessions s
      on s.id = (case when c.sid ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                      then c.sid::uuid end)
     and s.user_id = c.uid and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

create or replace function private.is_admin() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
    from (select auth.uid() as uid, auth.jwt() ->> 'session_id' as sid) c
    join public.profiles p on p.id = c.uid and p.role = 'admin'
    join auth.sessions s
      on s.id = (case when c.sid ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                      then c.sid::uuid end)
     and s.user_id = c.uid and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

create or replace function private.user_role(uid uuid) returns text
language sql stable security definer set search_path = '' as $$
  select case when p.role = 'customer' or uid is distinct from auth.uid()
                   or exists (
                     select 1
                     from (select auth.jwt() ->> 'session_id' as sid) c
                     join auth.sessions s
                       on s.id = (case when c.sid ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                       then c.sid::uuid end)
                      and s.user_id = uid and (s.not_after is null or s.not_after > pg_catalog.now()))
              then p.role else 'customer' end
  from public.profiles p where p.id = uid
$$;
