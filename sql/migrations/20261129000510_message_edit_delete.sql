-- Edit and delete with history, project settings, read receipts a project can hide from customers.
--
-- public.app_settings   one row, the project's server-side settings; every signed-in user reads it
--                       (the app needs the edit window and the receipts switch), admins change it.
--   edit_window_seconds          how long after sending the sender may edit a message (default 900)
--   customers_see_read_receipts  false hides staff read markers (ticket_reads) from customers
--
-- Edit: only the sender, only within the edit window (the server's clock against the message's
--   server-stamped created_at), never in a closed ticket, never a deleted message. edited_at is the
--   server's clock. Each edit keeps the replaced text in public.message_revisions (staff read them,
--   customers never). The service role is not bound by the window (server-side tools) but by the rest.
-- Delete: the sender (while the ticket is not closed) or an admin (always) sets deleted_at; the server
--   then clears content to '' and deletes the message's revisions, keeps sender_id, created_at,
--   deleted_at (server clock) and deleted_by. The row stays, as a tombstone: realtime sends it as an
--   UPDATE with the empty content, and sync_messages returns it with a new change cursor, so every
--   client drops the text (and its copies of the revisions: a client removes the revisions of a
--   message it receives with deleted_at set). Rows are never hard-deleted: a DELETE event would carry
--   the old key to every subscriber.
-- Read receipts: a user's read marker on a ticket (ticket_reads.last_read_at) is what "read" means; a
--   message was read by the other side when their marker passed its created_at.

-- settings --------------------------------------------------------------------------------------

create table public.app_settings (
  id boolean primary key default true check (id),
  edit_window_seconds integer not null default 900 check (edit_window_seconds between 0 and 604800),
  customers_see_read_receipts boolean not null default true,
  updated_at timestamptz not null default now()
);
insert into public.app_settings default values;

create or replace function private.app_settings_touch() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end $$;

create trigger app_settings_touch before update on public.app_settings
  for each row execute function private.app_settings_touch();

alter table public.app_settings enable row level security;
create policy app_settings_select on public.app_settings for select to authenticated using (true);
create policy app_settings_update on public.app_settings for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));

create or replace function private.edit_window() returns interval
language sql stable security definer set search_path = '' as $$
  select coalesce((select make_interval(secs => edit_window_seconds) from public.app_settings), interval '15 minutes')
$$;

create or replace function private.customers_see_read_receipts() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select customers_see_read_receipts from public.app_settings), true)
$$;

-- messages: tombstones --------------------------------------------------------------------------

-- no foreign key on purpose: a second messages→profiles key would make `sender:profiles(...)` embeds ambiguous
alter table public.messages add column deleted_by uuid;
alter table public.messages drop constraint messages_content_check;
alter table public.messages add constraint messages_content_check
  check (case when deleted_at is null then char_length(content) between 1 and 10000 else content = '' end)
  not valid;  -- validated below, once older soft-deleted rows are cleared

-- revisions -------------------------------------------------------------------------------------

create table public.message_revisions (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null references public.messages (id) on delete cascade,
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  content text not null,                       -- the text this edit replaced
  edited_by uuid references public.profiles (id) on delete set null,
  replaced_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create index message_revisions_message_idx on public.message_revisions (message_id, replaced_at);
create index message_revisions_ticket_idx on public.message_revisions (ticket_id);
create index message_revisions_change_idx on public.message_revisions (change_xid, change_id);

create trigger message_revisions_change before insert or update on public.message_revisions
  for each row execute function private.stamp_change();

alter table public.message_revisions enable row level security;
create policy message_revisions_select on public.message_revisions for select to authenticated
  using ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t));

-- the guard: who may edit or delete what, and the server's stamps -----------------------------------

create or replace function private.messages_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  api_user boolean := current_user in ('authenticated', 'anon');
  me uuid := auth.uid();
begin
  if new.id <> old.id or new.ticket_id <> old.ticket_id or new.sender_id <> old.sender_id
     or new.created_at <> old.created_at or new.is_internal <> old.is_internal then
    raise exception 'a message''s id, ticket_id, sender_id, created_at and is_internal cannot change'
      using errcode = '42501';
  end if;
  if old.deleted_at is not null then
    if new.deleted_at is null then
      raise exception 'a deleted message cannot be restored' using errcode = '42501';
    end if;
    if new.content is distinct from old.content and new.content <> '' then
      raise exception 'a deleted message cannot be edited' using errcode = '42501';
    end if;
    new.content := '';
    new.deleted_at := old.deleted_at;
    new.deleted_by := old.deleted_by;
    new.edited_at := old.edited_at;
    return new;
  end if;
  if new.deleted_at is not null then
    if api_user and me is distinct from old.sender_id and not private.is_admin() then
      raise exception 'only the sender or an admin deletes a message' using errcode = '42501';
    end if;
    if api_user and not private.is_admin() and private.ticket_is_closed(old.ticket_id) then
      raise exception 'messages in a closed ticket cannot be deleted' using errcode = '42501';
    end if;
    new.content := '';
    new.deleted_at := now();
    new.deleted_by := me;
    new.edited_at := old.edited_at;
    return new;
  end if;
  new.deleted_by := old.deleted_by;
  if new.content <> old.content then
    if private.ticket_is_closed(old.ticket_id) then
      raise exception 'messages in a closed ticket cannot be edited' using errcode = '42501';
    end if;
    if api_user and me is distinct from old.sender_id then
      raise exception 'only the sender edits a message' using errcode = '42501';
    end if;
    if api_user and now() > old.created_at + private.edit_window() then
      raise exception 'this message can no longer be edited: its edit window of % minutes has passed',
        round(extract(epoch from private.edit_window()) / 60, 1) using errcode = '42501';
    end if;
    new.edited_at := now();
  else
    new.edited_at := old.edited_at;
  end if;
  return new;
end $$;

-- after an edit keep the replaced text; after a delete drop every revision (definer: clients have no
-- write access to message_revisions at all)
create or replace function private.messages_keep_revision() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.deleted_at is not null then
    delete from public.message_revisions where message_id = new.id;
  else
    insert into public.message_revisions (message_id, ticket_id, content, edited_by, replaced_at)
    values (old.id, old.ticket_id, old.content, auth.uid(), coalesce(new.edited_at, now()));
  end if;
  return null;
end $$;

create trigger messages_keep_revision after update on public.messages
  for each row when (old.content is distinct from new.content)
  execute function private.messages_keep_revision();

-- an admin may delete anyone's message (the guard lets admins change nothing else on others' messages)
create policy messages_update_admin on public.messages for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));

-- older soft-deleted rows lose their text now, with a new change cursor so pulls carry it
update public.messages set content = '' where deleted_at is not null and content <> '';
alter table public.messages validate constraint messages_content_check;

-- read receipts a project can hide from customers ------------------------------------------------

drop policy ticket_reads_select on public.ticket_reads;
create policy ticket_reads_select on public.ticket_reads for select to authenticated
  using (ticket_id in (select t.id from public.tickets t)
         and (user_id = (select auth.uid()) or (select private.is_staff())
              or (select private.customers_see_read_receipts())));

-- incremental pull of revisions (staff only, by the policy above) --------------------------------

create or replace function public.sync_message_revisions(after_xid bigint default 0, after_id bigint default 0,
                                                         max_rows integer default 1000)
returns setof public.message_revisions language sql stable as $$
  select * from public.message_revisions r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

-- grants -----------------------------------------------------------------------------------------

revoke all on public.app_settings, public.message_revisions from anon, authenticated;
grant select, update (edit_window_seconds, customers_see_read_receipts) on public.app_settings to authenticated;
grant select on public.message_revisions to authenticated;
grant select, insert, update, delete on public.app_settings, public.message_revisions to service_role;
revoke execute on function public.sync_message_revisions(bigint, bigint, integer) from public, anon;
grant execute on function public.sync_message_revisions(bigint, bigint, integer) to authenticated, service_role;
revoke all on function private.app_settings_touch(), private.edit_window(), private.customers_see_read_receipts(),
  private.messages_keep_revision() from public, anon;
grant execute on function private.edit_window(), private.customers_see_read_receipts()
  to authenticated, service_role;

alter publication supabase_realtime add table public.app_settings, public.message_revisions;
