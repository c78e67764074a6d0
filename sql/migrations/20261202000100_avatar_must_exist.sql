-- A profile may only name an avatar picture that exists in Storage (checked when avatar_url changes).
--
-- Why: the notify worker purges avatar pictures that no profile names (notify/orphans.py), with the service
-- role's rights. While it removes a batch it holds the owners' profile rows `for share`; a user who points
-- their profile back at one of those pictures in that moment waits, and must then be refused rather than
-- left naming a picture that is gone. The app uploads the picture first and names it second, so it never
-- meets this check; a client that skips the upload gets a clear error instead of a broken picture.
--
-- The check runs as the caller (security invoker, like 20261130000150's): the avatars policies on
-- storage.objects decide what the caller sees, so a user can only name a picture they can see, which for
-- their own folder means one they uploaded. Rows written before this migration are left as they were.
-- Applies unchanged to a real Supabase project (storage.objects exists there; `authenticated` and
-- `service_role` may select from it, within its policies).

create or replace function private.profiles_avatar_exists() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.avatar_url is not null
     and (tg_op = 'INSERT' or new.avatar_url is distinct from old.avatar_url)
     and not exists (select 1 from storage.objects o
                     where o.bucket_id = 'avatars' and o.name = substr(new.avatar_url, char_length('avatars/') + 1)) then
    raise exception 'avatar_url names a picture that is not in Storage (upload it first): %', new.avatar_url
      using errcode = '22023';
  end if;
  return new;
end $$;

-- after profiles_avatar_check (triggers fire in name order): the shape is checked first
create trigger profiles_avatar_exists before insert or update of avatar_url on public.profiles
  for each row execute function private.profiles_avatar_exists();

-- grants: a trigger function is not for the API; firing it needs no grant
revoke execute on function private.profiles_avatar_exists() from public, anon;
