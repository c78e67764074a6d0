-- A deleted message takes its attachments with it.
--
--   * its public.attachments rows are deleted with the message (a client drops its copies of the
--     attachments, like the revisions, when it receives the message's tombstone);
--   * its files become unreadable at once to everyone but their uploader: the storage read policy
--     now asks for a live message (attachment_path_readable is replaced, everything else unchanged);
--   * the bytes are removed through the Storage API, never by SQL on storage.objects (on Supabase
--     that would leave the files in the bucket's backing store): the uploader's app deletes its own
--     files; public.attachment_objects_to_purge() lists, for a service-role job, the files of
--     deleted messages still in the bucket (e.g. an admin deleted someone else's message).

create or replace function private.attachment_path_readable(object_name text) returns boolean
language sql stable set search_path = '' as $$
  select exists (
    select 1 from public.messages m
    where m.id = private.path_uuid((storage.foldername(object_name))[2])
      and m.ticket_id = private.path_uuid((storage.foldername(object_name))[1])
      and m.deleted_at is null
  )
$$;

create or replace function private.messages_drop_attachments() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public.attachments where message_id = new.id;
  return null;
end $$;

create trigger messages_drop_attachments after update on public.messages
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function private.messages_drop_attachments();

create or replace function public.attachment_objects_to_purge() returns table (bucket_id text, name text)
language sql stable security definer set search_path = '' as $$
  select o.bucket_id, o.name from storage.objects o
  join public.messages m on m.id = private.path_uuid((storage.foldername(o.name))[2])
  where o.bucket_id = 'attachments' and m.deleted_at is not null
$$;

revoke all on function private.messages_drop_attachments() from public, anon;
revoke execute on function public.attachment_objects_to_purge() from public, anon, authenticated;
grant execute on function public.attachment_objects_to_purge() to service_role;
