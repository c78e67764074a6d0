-- The `realtime` schema a Supabase project has for Realtime Authorization and Broadcast from Database
-- (localbase only; on Supabase the Realtime server's tenant migrations own it). Shaped after
-- supabase/realtime `lib/realtime/tenants/repo/migrations/`:
--   20240523004032_redefine_authorization_tables  realtime.messages (topic, extension), RLS on, realtime.topic()
--   20240919163303_add_payload_to_messages         payload, event, private; realtime.send()
--   20241030150047_messages_partitioning           partitioned by range (inserted_at), PK (id, inserted_at)
--   20241108114728_messages_using_uuid             id uuid default gen_random_uuid()
--   20260514120000_add_binary_payload_to_messages  binary_payload, payload xor binary_payload
--   20260605120000_rename_broadcast_send_warning   realtime.send(): adds `id` to the payload, sets
--                                                   realtime.topic, inserts as the caller, warns on failure
--   20260707120000_restrict_realtime_schema        owned by supabase_realtime_admin
-- Grants as there: SELECT, INSERT, UPDATE on realtime.messages to anon, authenticated, service_role
-- (RLS decides; with no policy nobody but service_role passes), EXECUTE on the functions.
--
-- Local differences, each because localbase is one process on one database:
--   * one DEFAULT partition instead of the daily partitions Realtime's janitor creates and drops;
--     localbase deletes rows older than three days itself;
--   * an AFTER INSERT trigger notifies localbase of broadcasts written by realtime.send() (Supabase
--     reads them from a logical replication slot); the notification carries the row, or its id.
-- Idempotent, like every sql/local file.

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_payload_exclusive check (payload is null or binary_payload is null),
  primary key (id, inserted_at)
) partition by range (inserted_at);

create table if not exists realtime.messages_default partition of realtime.messages default;
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic);

alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
alter table realtime.messages_default owner to supabase_realtime_admin;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic() returns text language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;
alter function realtime.topic() owner to supabase_realtime_admin;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void language plpgsql as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean)
  to anon, authenticated, service_role;

-- localbase's delivery hook (see the header): runs as its owner, whoever inserted
create or replace function realtime.localbase_notify_broadcast() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  body text;
begin
  if new.extension = 'broadcast' then
    body := json_build_object('id', new.id, 'topic', new.topic, 'event', new.event, 'private', new.private,
                              'payload', new.payload)::text;
    if new.binary_payload is not null or octet_length(body) > 7900 then
      body := json_build_object('id', new.id)::text;  -- NOTIFY payloads stop at 8000 bytes: read the row
    end if;
    perform pg_notify('localbase_realtime_broadcast', body);
  end if;
  return null;
end;
$$;
revoke all on function realtime.localbase_notify_broadcast() from public;
drop trigger if exists localbase_notify_broadcast on realtime.messages;
create trigger localbase_notify_broadcast after insert on realtime.messages
  for each row execute function realtime.localbase_notify_broadcast();

-- Supabase's `postgres` (the role migrations run as) may write realtime.messages, so a
-- `security definer` function it owns can call realtime.send()
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'postgres') then
    grant usage on schema realtime to postgres;
    grant select, insert, update on realtime.messages to postgres;
    grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean) to postgres;
  end if;
end $$;
