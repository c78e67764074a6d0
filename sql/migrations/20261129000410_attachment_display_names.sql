-- Attachments keep the user's file name for display, whatever its characters, while the object key
-- stays within the characters Supabase Storage accepts (S3-safe ASCII: "résumé.pdf" or a Japanese
-- screenshot name is not a valid key). The object path must still be `<ticket_id>/<message_id>/<key>`
-- of the row's own ticket and message; only its last segment may differ from `name`.

alter table public.attachments drop constraint attachments_check;
alter table public.attachments add constraint attachments_object_path_check check (
  left(object_path, 74) = ticket_id::text || '/' || message_id::text || '/'
  and char_length(object_path) > 74
  and position('/' in substr(object_path, 75)) = 0
);
