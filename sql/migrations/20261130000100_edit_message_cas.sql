-- An edit as a compare-and-set against the text the editor saw (issue 13: offline edits through the outbox).
--
-- public.edit_message(message_id, seen, content): sets the message's content to `content` only if the row
-- still holds `seen` and is not deleted, and returns the updated row; an empty result means it did not
-- (the text changed meanwhile, the message was deleted, or the caller cannot see or update it: the client
-- reads the row to tell which). A PATCH with `content=eq.<text>` would do the same, but the text the user
-- saw travels in the URL there, and a message of 10,000 characters does not fit a request line (the
-- gateway's 16 KiB); here both texts travel in the body.
--
-- security invoker: RLS (messages_update_own / _admin) and the messages guard decide exactly as for a
-- PATCH — only the sender, within the edit window, never in a closed ticket — and their errors (42501
-- with the guard's reason) reach the caller unchanged.

create or replace function public.edit_message(message_id uuid, seen text, content text)
returns setof public.messages
language sql volatile security invoker set search_path = '' as $$
  update public.messages m set content = edit_message.content
  where m.id = edit_message.message_id and m.content = edit_message.seen and m.deleted_at is null
  returning m.*
$$;

revoke execute on function public.edit_message(uuid, text, text) from public, anon;
grant execute on function public.edit_message(uuid, text, text) to authenticated, service_role;
