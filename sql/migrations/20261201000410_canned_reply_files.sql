-- Files of canned replies (issue 14): a canned reply may carry files that are attached to the reply an agent
-- composes when they pick it. They are kept like message attachments (migration 20261129000400): objects in
-- the private `attachments` bucket, described by rows whose size and type come from the stored object.
--
-- Object paths are `canned/<canned_reply_id>/<file name>`, apart from the tickets' `<ticket>/<message>/...`.
--   read      whoever reads the canned reply (canned_replies RLS: staff, shared ones and their own personal
--             ones); customers never (the canned replies are hidden from them)
--   upload    into a canned reply the caller may write (admins for shared ones, the owner for a personal one:
--             private.may_write_owned); replace only one's own objects; delete one's own (the bucket's own
--             delete policy)
-- public.canned_reply_files rows: written by the uploader for a reply they may write, after the upload;
-- removed with a tombstone (deleted_at) by whoever may write the reply; pulled by cursor like the other
-- workspace tables. When picked, the app copies the file into the new message's own attachment, so the
-- customer gets the message's file, never a read on this one.

create or replace function private.canned_path_reply(object_name text) returns uuid
language sql immutable set search_path = '' as $$
  select case when array_length(storage.foldername(object_name), 1) = 2
                   and (storage.foldername(object_name))[1] = 'canned'
                   and storage.filename(object_name) <> ''
              then private.path_uuid((storage.foldername(object_name))[2]) end
$$;

-- may the caller read / write files of the canned reply this path names? Invoker: canned_replies RLS decides
create or replace function private.canned_path_readable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select exists (select 1 from public.canned_replies c
                 where c.id = private.canned_path_reply(object_name) and c.deleted_at is null)
$$;

create or replace function private.canned_path_writable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select exists (select 1 from public.canned_replies c
                 where c.id = private.canned_path_reply(object_name) and c.deleted_at is null
                   and private.may_write_owned(c.owner_id))
$$;

create policy canned_files_objects_select on storage.objects for select to authenticated
  using (bucket_id = 'attachments' and private.canned_path_readable(name));
create policy canned_files_objects_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'attachments' and owner_id = (select auth.uid()::text)
              and private.canned_path_writable(name));
create policy canned_files_objects_update on storage.objects for update to authenticated
  using (bucket_id = 'attachments' and owner_id = (select auth.uid()::text) and private.canned_path_writable(name))
  with check (bucket_id = 'attachments' and owner_id = (select auth.uid()::text)
              and private.canned_path_writable(name));

create table public.canned_reply_files (
  id uuid primary key default gen_random_uuid(),
  canned_reply_id uuid not null references public.canned_replies (id) on delete cascade,
  uploader_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 255 and position('/' in name) = 0),
  mime text not null default '',
  size bigint not null default 0 check (size >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  object_path text not null,
  created_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0,
  check (object_path = 'canned/' || canned_reply_id::text || '/' || name)
);
create unique index canned_reply_files_live_path on public.canned_reply_files (object_path) where deleted_at is null;
create index canned_reply_files_reply_idx on public.canned_reply_files (canned_reply_id);
create index canned_reply_files_change_idx on public.canned_reply_files (change_xid, change_id);

-- the server's truth: the stored object's size and type, the server clock; only the tombstone changes later
create or replace function private.canned_reply_files_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  stored jsonb;
begin
  if tg_op = 'UPDATE' then
    if (new.id, new.canned_reply_id, new.uploader_id, new.name, new.mime, new.size, new.sha256, new.object_path,
        new.created_at) is distinct from (old.id, old.canned_reply_id, old.uploader_id, old.name, old.mime,
        old.size, old.sha256, old.object_path, old.created_at)
       or (old.deleted_at is not null and new.deleted_at is distinct from old.deleted_at) then
      raise exception 'a canned reply file is only ever removed' using errcode = '42501';
    end if;
    if new.deleted_at is not null and old.deleted_at is null then
      new.deleted_at := now();
    end if;
    return new;
  end if;
  new.created_at := now();
  new.deleted_at := null;
  select o.metadata into stored from storage.objects o
  where o.bucket_id = 'attachments' and o.name = new.object_path and o.owner_id = new.uploader_id::text;
  if stored is null then
    raise exception 'upload the file before describing it' using errcode = '23503';
  end if;
  new.size := coalesce((stored ->> 'size')::bigint, 0);
  new.mime := coalesce(stored ->> 'mimetype', '');
  return new;
end $$;

create trigger canned_reply_files_guard before insert or update on public.canned_reply_files
  for each row execute function private.canned_reply_files_guard();
create trigger canned_reply_files_change before insert or update on public.canned_reply_files
  for each row execute function private.stamp_change();

alter table public.canned_reply_files enable row level security;
create policy canned_reply_files_select on public.canned_reply_files for select to authenticated
  using (canned_reply_id in (select c.id from public.canned_replies c));
create policy canned_reply_files_insert on public.canned_reply_files for insert to authenticated
  with check (uploader_id = (select auth.uid()) and private.canned_path_writable(object_path));
create policy canned_reply_files_update on public.canned_reply_files for update to authenticated
  using (private.canned_path_writable(object_path)) with check (private.canned_path_writable(object_path));

create or replace function public.sync_canned_reply_files(after_xid bigint default 0, after_id bigint default 0,
                                                          max_rows integer default 1000)
returns setof public.canned_reply_files language sql stable as $$
  select * from public.canned_reply_files r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;

-- grants: exactly what this file creates; anon nothing ---------------------------------------------------

revoke all on public.canned_reply_files from anon, authenticated, service_role;
grant select, insert (id, canned_reply_id, uploader_id, name, sha256, object_path), update (deleted_at)
  on public.canned_reply_files to authenticated;
grant all on public.canned_reply_files to service_role;
revoke execute on function public.sync_canned_reply_files(bigint, bigint, integer) from public, anon;
grant execute on function public.sync_canned_reply_files(bigint, bigint, integer) to authenticated, service_role;
revoke all on function private.canned_path_reply(text), private.canned_path_readable(text),
  private.canned_path_writable(text), private.canned_reply_files_guard() from public, anon;
grant execute on function private.canned_path_reply(text), private.canned_path_readable(text),
  private.canned_path_writable(text), private.canned_reply_files_guard() to authenticated, service_role;

alter publication supabase_realtime add table public.canned_reply_files;
