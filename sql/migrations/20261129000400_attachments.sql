-- Attachments: files of chat messages in the private Storage bucket `attachments`, and their rows in
-- public.attachments. Applies unchanged to a real Supabase project (where Storage's schema exists,
-- owned by supabase_storage_admin: `postgres` may insert into storage.buckets (granted all) and
-- create policies on storage.objects (it is a member of supabase_storage_admin)) and to localbase
-- (sql/local gives plain PostgreSQL the same storage schema).
--
-- Object paths are `<ticket_id>/<message_id>/<file name>`. Who may do what:
--   read      the uploader; anyone who may read the message (the messages policies decide, as the
--             caller: a customer sees own tickets' non-internal messages, staff per the ticket rules).
--   upload    a participant into a ticket they may write: a customer into own non-closed tickets,
--             staff into tickets they see; the message id must be new or the uploader's own message.
--   replace   (upsert, move) only one's own files, and only to a place one may upload to.
--   delete    only one's own files.
-- public.attachments rows describe uploaded files; size and mime come from the stored object, never
-- from the client; a row may be written only by the uploader, for their own message, and never
-- changed (authenticated has no UPDATE grant).

-- helpers ---------------------------------------------------------------------------------------

-- a path segment as a uuid, or null (a bad path must fail a policy, not raise)
create or replace function private.path_uuid(segment text) returns uuid
language sql immutable set search_path = '' as $$
  select case when segment ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then segment::uuid end
$$;

-- the sender of a message, whoever may see it (so a customer cannot attach files to an internal
-- note they cannot see, by guessing its id)
create or replace function private.message_sender(message uuid) returns uuid
language sql stable security definer set search_path = '' as $$
  select sender_id from public.messages where id = message
$$;

-- may the caller upload an attachment to this object path? Security invoker: the tickets policies
-- decide which tickets the caller sees.
create or replace function private.attachment_path_writable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select coalesce(
    array_length(storage.foldername(object_name), 1) = 2
    and storage.filename(object_name) <> ''
    and private.path_uuid((storage.foldername(object_name))[2]) is not null
    and exists (
      select 1 from public.tickets t
      where t.id = private.path_uuid((storage.foldername(object_name))[1])
        and ((select private.is_staff()) or t.status <> 'closed')
    )
    and coalesce(private.message_sender(private.path_uuid((storage.foldername(object_name))[2])) = auth.uid(),
                 true),
    false)
$$;

-- may the caller read the attachments of this object path? Invoker: the messages policies decide.
create or replace function private.attachment_path_readable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select exists (
    select 1 from public.messages m
    where m.id = private.path_uuid((storage.foldername(object_name))[2])
      and m.ticket_id = private.path_uuid((storage.foldername(object_name))[1])
  )
$$;

-- the bucket ------------------------------------------------------------------------------------

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('attachments', 'attachments', false, 26214400, array[
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/heic',
  'application/pdf', 'text/plain', 'text/csv', 'application/json', 'application/zip',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet'
])
on conflict (id) do nothing;

create policy attachments_objects_select on storage.objects for select to authenticated
  using (bucket_id = 'attachments'
         and (owner_id = (select auth.uid()::text) or private.attachment_path_readable(name)));
create policy attachments_objects_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'attachments'
              and owner_id = (select auth.uid()::text)
              and private.attachment_path_writable(name));
create policy attachments_objects_update on storage.objects for update to authenticated
  using (bucket_id = 'attachments' and owner_id = (select auth.uid()::text))
  with check (bucket_id = 'attachments'
              and owner_id = (select auth.uid()::text)
              and private.attachment_path_writable(name));
create policy attachments_objects_delete on storage.objects for delete to authenticated
  using (bucket_id = 'attachments' and owner_id = (select auth.uid()::text));

-- the table -------------------------------------------------------------------------------------

create table public.attachments (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null references public.messages (id) on delete cascade,
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  uploader_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 255 and position('/' in name) = 0),
  mime text not null default '',
  size bigint not null default 0 check (size >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  object_path text not null unique,
  created_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0,
  check (object_path = ticket_id::text || '/' || message_id::text || '/' || name)
);

-- the server's truth: the message's ticket, the stored object's size and type, the server clock.
-- Security invoker: the caller must see the object (the uploader does), or the insert fails.
create or replace function private.attachments_before_insert() returns trigger
language plpgsql set search_path = '' as $$
declare
  stored jsonb;
begin
  new.created_at := now();
  if not exists (select 1 from public.messages m where m.id = new.message_id and m.ticket_id = new.ticket_id) then
    raise exception 'the message is not in that ticket' using errcode = '23503';
  end if;
  select o.metadata into stored from storage.objects o
  where o.bucket_id = 'attachments' and o.name = new.object_path
    and o.owner_id = new.uploader_id::text;
  if stored is null then
    raise exception 'upload the file before describing it' using errcode = '23503';
  end if;
  new.size := coalesce((stored ->> 'size')::bigint, 0);
  new.mime := coalesce(stored ->> 'mimetype', '');
  return new;
end $$;

create trigger attachments_before_insert before insert on public.attachments
  for each row execute function private.attachments_before_insert();
create trigger attachments_change before insert or update on public.attachments
  for each row execute function private.stamp_change();

alter table public.attachments enable row level security;

create policy attachments_select on public.attachments for select to authenticated
  using (message_id in (select m.id from public.messages m));
create policy attachments_insert on public.attachments for insert to authenticated
  with check (
    uploader_id = (select auth.uid())
    and exists (select 1 from public.messages m
                where m.id = message_id and m.ticket_id = attachments.ticket_id and m.sender_id = (select auth.uid()))
  );

create index attachments_message_idx on public.attachments (message_id);
create index attachments_ticket_idx on public.attachments (ticket_id);
create index attachments_change_idx on public.attachments (change_xid, change_id);

create or replace function public.sync_attachments(after_xid bigint default 0, after_id bigint default 0,
                                                   max_rows integer default 1000)
returns setof public.attachments language sql stable as $$
  select * from public.attachments r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

-- grants: exactly what this file creates; anon nothing -------------------------------------------

revoke all on public.attachments from anon, authenticated, service_role;
grant select, insert on public.attachments to authenticated;
grant all on public.attachments to service_role;
revoke execute on function public.sync_attachments(bigint, bigint, integer) from public, anon;
grant execute on function public.sync_attachments(bigint, bigint, integer) to authenticated, service_role;
revoke execute on function private.path_uuid(text), private.message_sender(uuid),
  private.attachment_path_writable(text), private.attachment_path_readable(text),
  private.attachments_before_insert() from public, anon;
grant execute on function private.path_uuid(text), private.message_sender(uuid),
  private.attachment_path_writable(text), private.attachment_path_readable(text),
  private.attachments_before_insert() to authenticated, service_role;

-- realtime ------------------------------------------------------------------------------------

alter publication supabase_realtime add table public.attachments;
