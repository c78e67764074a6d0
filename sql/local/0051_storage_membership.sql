-- Corrects 0050 (numbered after it so that it runs after it on new data dirs too; the storage range
-- 0030-0039 of sql/README.md was set after 0050 had landed).
--
-- On Supabase, `postgres` manages policies on storage.objects/buckets through supautils'
-- `policy_grants` (supabase/postgres ansible/files/postgresql_config/supautils.conf.j2) and is no
-- member of supabase_storage_admin (supabase/postgres
-- migrations/db/migrations/20250421084701_revoke_admin_roles_from_postgres.sql). PostgreSQL lets only
-- an owner create a policy, so localbase keeps postgres a member, but (like 0090 for realtime) INHERIT
-- only: no `set role supabase_storage_admin`, which would also have let it slip past 0050's DDL guard.
-- The guard now also looks at the session user, not only the current one.

do $$
begin
  if to_regrole('supabase_storage_admin') is null or to_regrole('postgres') is null
     or (select rolsuper from pg_roles where rolname = 'postgres') then
    return;
  end if;
  if current_setting('server_version_num')::int >= 160000 then
    execute 'revoke supabase_storage_admin from postgres';
    execute 'grant supabase_storage_admin to postgres with inherit true, set false';
  end if;
end $$;

set local localbase.platform_ddl = 'storage';

create or replace function storage.refuse_platform_ddl() returns event_trigger
language plpgsql as $$
declare
  cmd record;
begin
  if current_setting('localbase.platform_ddl', true) = 'storage'
     or (current_user = 'supabase_storage_admin' and session_user = 'supabase_storage_admin') then
    return;
  end if;
  if tg_event = 'sql_drop' then
    for cmd in select * from pg_event_trigger_dropped_objects() loop
      if cmd.schema_name = 'storage' and cmd.object_type not in ('policy', 'trigger') then
        raise exception 'must be owner of % %', cmd.object_type, cmd.object_identity
          using errcode = '42501', hint = 'Supabase lets migrations add policies and triggers to storage tables, nothing else';
      end if;
    end loop;
    return;
  end if;
  for cmd in select * from pg_event_trigger_ddl_commands() loop
    -- a policy or trigger has no schema of its own: its identity names the table ("p on storage.objects")
    if (cmd.schema_name = 'storage' or cmd.object_identity like '% on storage.%')
       and cmd.command_tag not in ('CREATE POLICY', 'ALTER POLICY', 'CREATE TRIGGER', 'GRANT', 'REVOKE') then
      raise exception 'must be owner of % %', cmd.object_type, cmd.object_identity
        using errcode = '42501', hint = 'Supabase lets migrations add policies and triggers to storage tables, nothing else';
    end if;
  end loop;
end $$;
