-- A desk always keeps an admin: the last admin's role cannot be taken away through the API.
--
-- Admins change roles (profiles_update_admin, the app's team page). Nothing stopped the last admin from demoting
-- themselves, or two admins from demoting each other at the same moment: the desk was then left with nobody who
-- may change roles, invite, or manage the workspace, and only the service key could repair it. Now an API user's
-- update that takes the admin role from a profile is refused ('the desk must keep an admin', 42501) when no other
-- admin would be left. The admins' rows are locked first, so two such updates at once are decided one after the
-- other: the second sees the first's outcome. The service role and the database owner are not held (a recovery
-- through the dashboard stays possible).
--
-- Security invoker on purpose, as profiles_guard: current_user is then the API role that ran the statement (in a
-- definer function it would be the owner). The caller it holds is an admin (profiles_guard, which fires first by
-- name, refuses anyone else a role change), and an admin's RLS shows and lets them lock every profile. search_path
-- empty; a trigger function: executable by its owner only.

create or replace function private.profiles_keep_an_admin() returns trigger
language plpgsql set search_path = '' as $$
begin
  if current_user in ('authenticated', 'anon') then  -- as in profiles_guard: the API's user roles
    perform 1 from public.profiles where role = 'admin' for update;
    if not exists (select 1 from public.profiles where role = 'admin' and id <> old.id) then
      raise exception 'the desk must keep an admin: make someone else an admin first' using errcode = '42501';
    end if;
  end if;
  return new;
end $$;

create trigger profiles_keep_an_admin before update of role on public.profiles
  for each row when (old.role = 'admin' and new.role is distinct from 'admin')
  execute function private.profiles_keep_an_admin();

revoke all on function private.profiles_keep_an_admin() from public, anon, authenticated, service_role;
