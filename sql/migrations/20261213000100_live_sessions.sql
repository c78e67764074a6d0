-- Staff and admin rights need a live session: an access token whose session has ended (signed out, ended by an
-- invitation's acceptance, or by a sign-out of all devices) no longer carries the account's role.
--
-- Why (review14b): RLS reads the caller's role from `profiles` at query time, and an access token stays valid until
-- it expires (the JWT expiry, 1 h) whatever happens to its session. An outsider who signed an invited address up
-- before its invitation had an account kept their access token when the real invitee accepted (migration
-- 20261211000510 ends the account's other sessions and clears its password, but a JWT is checked by its signature
-- only): with the same `sub`, it read and wrote the desk as an agent or admin for up to an hour. Likewise any
-- token of a session signed out or ended elsewhere kept the staff role until it expired.
--
-- How (Supabase's session model): every access token GoTrue issues carries a `session_id` claim, the primary key of
-- its row in `auth.sessions` (supabase/auth internal/tokens/service.go `AccessTokenClaims.SessionId`; Supabase's
-- docs, Auth > Sessions: "You can correlate this ID with the primary key of the auth.sessions table"); signing out
-- deletes the row (and its refresh tokens). GoTrue's own `/user` refuses a token whose session row is gone
-- (internal/api/auth.go: "Session from session_id claim in JWT does not exist"); the data API never asks. So:
-- * `private.session_is_live()`: the token's `session_id` names a row of `auth.sessions` for the token's `sub`
--   whose `not_after` (a time-boxed session's end) has not passed (found by the user's index, the id compared as
--   text: a claim that is not a UUID matches nothing). Security definer (owner `postgres`, which may
--   read `auth.sessions` on a project: supabase/postgres migrations/db/migrations/10000000000000_demote-postgres.sql
--   grants it ALL on auth's tables, supabase/auth 20240612123726_enable_rls_update_grants grants select on
--   auth.sessions; `postgres` bypasses RLS), empty search_path, one index lookup. Executable by
--   `authenticated` (sync_status below asks it as the caller) and `service_role`; never `anon`.
-- * `private.is_staff()`, `private.is_admin()`: true only with a live session, asked only when the role would
--   grant something (a customer's call costs what it did). `private.user_role(uid)` answers 'customer' for the
--   caller's own staff role without a live session (the guards that branch on it then apply a customer's rules,
--   never a null that skips them); for anyone else's uid it answers as before.
-- * The policies that called these helpers per row now call them as `(select ...)`, an initplan evaluated once
--   per statement (the others already did: migrations 20261203000300 and earlier): invitations, profiles
--   (select, admin update), tickets (admin delete/update, staff insert, agent update). Same rules.
-- * `public.sync_status(cursors)`, the question every pull after the initial sync asks first, refuses a token
--   whose session has ended with SQLSTATE PT401 (PostgREST answers HTTP 401): the app then refreshes, its
--   refresh is refused (the session is gone) and it asks its user to sign in again, instead of pulling a desk
--   that looks empty until the token expires. Only this RPC raises: a raise inside a policy would abort Realtime's
--   `realtime.apply_rls` for every subscriber of a change (it has no exception handler), so the policies answer
--   false instead.
-- Left, as in Supabase's model: such a token keeps what needs no role (a customer's own tickets and messages)
-- until it expires; the `sync_*` pages and other RPCs answer for it as for a customer.

create or replace function private.session_is_live() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from auth.sessions s
    where s.user_id = auth.uid() and s.id::text = auth.jwt() ->> 'session_id'
      and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

revoke all on function private.session_is_live() from public, anon, authenticated, service_role;
grant execute on function private.session_is_live() to authenticated, service_role;

-- the three helpers ask for the session in their own query (a nested security definer call cost each as much again:
-- ~30 µs per call on the loaded VM); the session is found by the user's index and its id compared as text, so a
-- claim that is not a UUID matches nothing instead of failing the cast

create or replace function private.is_staff() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
    from (select auth.uid() as uid, auth.jwt() ->> 'session_id' as sid) c
    join public.profiles p on p.id = c.uid and p.role in ('agent', 'admin')
    join auth.sessions s on s.user_id = c.uid and s.id::text = c.sid
     and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

create or replace function private.is_admin() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
    from (select auth.uid() as uid, auth.jwt() ->> 'session_id' as sid) c
    join public.profiles p on p.id = c.uid and p.role = 'admin'
    join auth.sessions s on s.user_id = c.uid and s.id::text = c.sid
     and (s.not_after is null or s.not_after > pg_catalog.now()))
$$;

create or replace function private.user_role(uid uuid) returns text
language sql stable security definer set search_path = '' as $$
  select case when p.role = 'customer' or uid is distinct from auth.uid()
                   or exists (select 1 from auth.sessions s
                              where s.user_id = uid and s.id::text = auth.jwt() ->> 'session_id'
                                and (s.not_after is null or s.not_after > pg_catalog.now()))
              then p.role else 'customer' end
  from public.profiles p where p.id = uid
$$;

-- (create or replace keeps the grants of 20261129000100: execute to authenticated and service_role)

create or replace function public.sync_status(cursors jsonb)
returns jsonb language plpgsql stable security invoker set search_path = '' as $$
begin
  if not private.session_is_live() then
    raise sqlstate 'PT401' using message = 'this session has ended: sign in again';
  end if;
  return pg_catalog.jsonb_build_object(
    'changed', pg_catalog.to_jsonb(public.sync_changed(cursors)),
    'horizon', public.sync_horizon());
end $$;

revoke all on function public.sync_status(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.sync_status(jsonb) to authenticated;

-- the policies that asked per row -------------------------------------------------------------------------

alter policy invitations_admin_select on public.invitations using ((select private.is_admin()));
alter policy invitations_admin_delete on public.invitations using ((select private.is_admin()));
alter policy invitations_admin_insert on public.invitations
  with check ((select private.is_admin()) and invited_by = (select auth.uid())
              and accepted_at is null and accepted_by is null and invitee is null);

alter policy profiles_select on public.profiles
  using (id = (select auth.uid()) or role in ('agent', 'admin') or (select private.is_staff()));
alter policy profiles_update_admin on public.profiles
  using ((select private.is_admin())) with check ((select private.is_admin()));

alter policy tickets_delete_admin on public.tickets using ((select private.is_admin()));
alter policy tickets_update_admin on public.tickets
  using ((select private.is_admin())) with check ((select private.is_admin()));
alter policy tickets_insert_staff on public.tickets
  with check ((select private.is_admin())
              or ((select private.is_staff()) and (assignee_id is null or assignee_id = (select auth.uid()))));
alter policy tickets_update_agent on public.tickets
  using ((select private.user_role(auth.uid())) = 'agent'
         and (assignee_id = (select auth.uid()) or assignee_id is null))
  with check ((select private.user_role(auth.uid())) = 'agent'
              and (assignee_id = (select auth.uid()) or assignee_id is null));
