-- public.notifications had foreign keys to both messages and profiles covered by one unique key
-- (recipient_id, message_id), which makes it a many-to-many junction between the two for PostgREST:
-- `messages?select=sender:profiles(...)` became ambiguous (PGRST201). The recipient's foreign key goes;
-- a trigger on profiles removes a deleted user's notifications instead (what `on delete cascade` did),
-- and the worker skips a row whose recipient or message is gone.

alter table public.notifications drop constraint notifications_recipient_id_fkey;
create index notifications_recipient_idx on public.notifications (recipient_id);

create or replace function private.profiles_drop_notifications() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public.notifications where recipient_id = old.id;
  return null;
end $$;

create trigger profiles_drop_notifications after delete on public.profiles
  for each row execute function private.profiles_drop_notifications();

revoke all on function private.profiles_drop_notifications() from public, anon;
