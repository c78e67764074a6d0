-- Supabase Storage's schema as a Supabase project has it, for a plain PostgreSQL (localbase only).
-- Never applied to a real Supabase project: there, Storage's own migrations create it.
-- Shaped after supabase/storage `migrations/tenant` (0002 storage-schema, 0013 bucket limits,
-- 0016 version, 0018 owner_id, 0025 user_metadata, 0046/0049 grants) and supabase/postgres
-- (`grant supabase_storage_admin to postgres`, so that `postgres` may create policies on
-- storage.objects, as on Supabase). Idempotent: every statement can run again.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login noinherit createrole noreplication;
  end if;
end $$;

create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin;

create table if not exists storage.migrations (
  id integer primary key,
  name varchar(100) unique not null,
  hash varchar(40) not null,
  executed_at timestamp default current_timestamp
);

create table if not exists storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text,
  type text not null default 'STANDARD'
);
create unique index if not exists bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

create table if not exists storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,
  user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
alter table storage.migrations enable row level security;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end $$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end $$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end $$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end $$;

drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

alter table storage.migrations owner to supabase_storage_admin;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.update_updated_at_column() owner to supabase_storage_admin;

-- RLS decides; the grants are Supabase's (storage migrations 0046 and 0049)
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects, storage.migrations to supabase_storage_admin;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'postgres') then
    grant all on storage.buckets, storage.objects to postgres with grant option;
    grant usage on schema storage to postgres;
    -- supabase/postgres 20220609081115: lets `postgres` manage policies on storage.objects
    grant supabase_storage_admin to postgres;
  end if;
end $$;

-- What Supabase lets `postgres` (and so a migration) do in the storage schema since April 2025:
-- create, alter and drop policies and triggers on its tables, and write storage.buckets and
-- storage.objects; but not create or drop tables, functions, views or indexes there, alter its
-- tables (e.g. `enable row level security`) or comment on its objects ("must be owner of table
-- objects"). Supabase enforces it with supautils; here an event trigger refuses the same DDL, so a
-- migration that would fail on Supabase fails locally first. Only this file (which sets
-- `localbase.platform_ddl`) and supabase_storage_admin may change the schema itself.
set local localbase.platform_ddl = 'storage';

create or replace function storage.refuse_platform_ddl() returns event_trigger
language plpgsql as $$
declare
  cmd record;
begin
  if current_setting('localbase.platform_ddl', true) = 'storage' or current_user = 'supabase_storage_admin' then
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

drop event trigger if exists localbase_storage_ddl_end;
create event trigger localbase_storage_ddl_end on ddl_command_end execute function storage.refuse_platform_ddl();
drop event trigger if exists localbase_storage_sql_drop;
create event trigger localbase_storage_sql_drop on sql_drop execute function storage.refuse_platform_ddl();
