-- Avatars: each user's picture in the private Storage bucket `avatars`, named by profiles.avatar_url.
-- Applies unchanged to a real Supabase project (Storage's schema exists there, owned by
-- supabase_storage_admin: `postgres` may insert into storage.buckets and create policies on
-- storage.objects) and to localbase (sql/local gives plain PostgreSQL the same storage schema), as
-- 20261129000400_attachments.sql does.
--
-- Object paths are `<user_id>/<file name>`; the app names files after their content hash, so a new
-- picture has a new name and every cached copy of the old one is simply unused.
--   read      authenticated users who may see that user's profile (the profiles policies decide, as
--             the caller: a customer sees themselves and staff; staff see everyone). Not public: a
--             customer's face is not for the whole internet, nor for other customers.
--   upload    only into one's own folder, as oneself; at most 1 MiB; PNG, JPEG, WebP or GIF only (the
--             bucket's limits, enforced by Storage before any row is written).
--   replace   (upsert, move) only one's own files, and only within one's own folder.
--   delete    only one's own files.
-- profiles.avatar_url is null or `avatars/<that profile's id>/<file name>`: a profile can only name a
-- picture in its own folder (nobody shows someone else's picture as theirs, and no client is made to
-- fetch an outside URL that would learn who reads the ticket). Checked when it changes, so rows written
-- before this migration are left as they were (the app shows initials for anything else).

-- helpers ---------------------------------------------------------------------------------------

-- may the caller write this avatar object path? Exactly `<own uid>/<file name>`.
create or replace function private.avatar_path_own(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select coalesce(
    array_length(storage.foldername(object_name), 1) = 1
    and (storage.foldername(object_name))[1] = (select auth.uid()::text)
    and storage.filename(object_name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$',
    false)
$$;

-- may the caller see the avatar of the user this path belongs to? Invoker: the profiles policies decide.
create or replace function private.avatar_path_readable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select exists (
    select 1 from public.profiles p where p.id = private.path_uuid((storage.foldername(object_name))[1])
  )
$$;

create or replace function private.profiles_avatar_check() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.avatar_url is not null
     and (tg_op = 'INSERT' or new.avatar_url is distinct from old.avatar_url)
     and new.avatar_url !~ ('^avatars/' || new.id::text || '/[A-Za-z0-9][A-Za-z0-9._-]{0,199}$') then
    raise exception 'avatar_url must name a picture in your own avatars folder (avatars/%/<file>)', new.id
      using errcode = '22023';
  end if;
  return new;
end $$;

create trigger profiles_avatar_check before insert or update of avatar_url on public.profiles
  for each row execute function private.profiles_avatar_check();

-- the bucket ------------------------------------------------------------------------------------

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('avatars', 'avatars', false, 1048576, array['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
on conflict (id) do nothing;

create policy avatars_objects_select on storage.objects for select to authenticated
  using (bucket_id = 'avatars'
         and (owner_id = (select auth.uid()::text) or private.avatar_path_readable(name)));
create policy avatars_objects_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars'
              and owner_id = (select auth.uid()::text)
              and private.avatar_path_own(name));
create policy avatars_objects_update on storage.objects for update to authenticated
  using (bucket_id = 'avatars' and owner_id = (select auth.uid()::text))
  with check (bucket_id = 'avatars'
              and owner_id = (select auth.uid()::text)
              and private.avatar_path_own(name));
create policy avatars_objects_delete on storage.objects for delete to authenticated
  using (bucket_id = 'avatars' and owner_id = (select auth.uid()::text));

-- grants: exactly what this file creates; anon nothing -------------------------------------------

revoke execute on function private.avatar_path_own(text), private.avatar_path_readable(text),
  private.profiles_avatar_check() from public, anon;
grant execute on function private.avatar_path_own(text), private.avatar_path_readable(text)
  to authenticated, service_role;
