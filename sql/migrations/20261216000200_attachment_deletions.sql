-- Deleted attachments leave a tombstone that clients pull: public.attachment_deletions and
-- public.sync_attachment_deletions(after_xid, after_id, max_rows).
--
-- Why: a row deleted from public.attachments leaves nothing behind for a change cursor, so the pull
-- (sync_attachments, by cursor) never told the other clients, and their caches kept the row and the
-- downloaded file for good. Realtime's DELETE carries the id, but only to a client online at that moment.
-- Rows are deleted by: a message's delete (20261129000525's trigger), the cascades of a message, ticket or
-- uploader's profile deleted, and anyone with the service role (a cleanup job, an admin's tooling).
--
-- How: an AFTER DELETE statement trigger on public.attachments records each deleted row's id with its message,
-- ticket and whether that message was an internal note, read from the message. So that the message is still there
-- to read, a message deleted outright (a cascade of its sender's profile, the service role) deletes its attachments
-- itself, in a BEFORE DELETE trigger, instead of leaving them to the foreign key's cascade, which ran after the
-- message was gone, so their tombstones were counted internal and customers never dropped those files (review20;
-- a note the cascade could read did not hold either: which of a profile's cascades runs first, to its messages or
-- to its uploads, is the order of the constraints' internal trigger names, review22). An attachment found with
-- its message gone all the same counts as internal (only staff then learn of it). Stamped with the change cursor
-- like every synced table (private.stamp_change, the (change_xid, change_id) index). A tombstone whose ticket is
-- gone too is not recorded (nobody could read it, and the client drops the ticket's rows with the ticket). A
-- deletion of an id already tombstoned stamps the tombstone again. An insert of an attachment under a tombstoned id for the same
-- message (a resend after a cleanup) deletes its tombstone in the same transaction, so a client that pulls after
-- it keeps the row it gets by the attachments' cursor. An insert under that id for another message (an id that
-- leaked, taken by another user: review20, review21) is refused (23505, as a live id would conflict): its tombstone
-- would stay, but the new row's own delete would rewrite it under the new message, and a cache that had not pulled
-- the first one would then keep the deleted file for good (the client drops a tombstone's row only under the
-- tombstone's message). Nor does a deleted message take attachments again (23503): its delete took its rows and
-- left their tombstones, and its uploader, whose object outlives the delete until the purge, could otherwise
-- insert the rows again and have every cache pull them back under the deleted message (review21).
--
-- Who reads a tombstone: as who reads the attachment's message (messages_select, 20261203000300): the ticket
-- is visible to the caller (tickets' policies decide) and the message was not an internal note, or the caller
-- is staff; staff below aal2 while two-step sign-in is required read nothing (staff_mfa, as on attachments).
-- Security: select only, to authenticated; anon nothing; no API role writes the table (only the triggers,
-- security definer, executable by their owner only). Not in the realtime publication: realtime's own DELETE
-- of public.attachments is the live signal; this table is the pull's.

-- the table -------------------------------------------------------------------------------------------------

create table public.attachment_deletions (
  id uuid primary key,  -- the deleted attachment's id
  message_id uuid not null,
  ticket_id uuid not null,
  is_internal boolean not null default true,
  deleted_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create trigger attachment_deletions_change before insert or update on public.attachment_deletions
  for each row execute function private.stamp_change();

create index attachment_deletions_change_idx on public.attachment_deletions (change_xid, change_id);
create index attachment_deletions_ticket_idx on public.attachment_deletions (ticket_id);

alter table public.attachment_deletions enable row level security;

create policy attachment_deletions_select on public.attachment_deletions for select to authenticated
  using (exists (select 1 from public.tickets t where t.id = attachment_deletions.ticket_id)
         and (not is_internal or (select private.is_staff())));
create policy staff_mfa on public.attachment_deletions as restrictive for all to authenticated
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));

-- a message deleted outright deletes its attachments first, while it still exists (see the header)
create or replace function private.messages_delete_attachments_first() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if exists (select 1 from public.attachments a where a.message_id = old.id) then  -- else no statement trigger
    delete from public.attachments a where a.message_id = old.id;
  end if;
  return old;
end $$;

create trigger messages_delete_attachments_first before delete on public.messages
  for each row execute function private.messages_delete_attachments_first();

-- the triggers on public.attachments -----------------------------------------------------------------------

create or replace function private.attachments_record_deletions() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.attachment_deletions as d (id, message_id, ticket_id, is_internal, deleted_at)
  select g.id, g.message_id, g.ticket_id, coalesce(m.is_internal, true), now()
  from gone g
  left join public.messages m on m.id = g.message_id
  where exists (select 1 from public.tickets t where t.id = g.ticket_id)
  on conflict (id) do update
    set message_id = excluded.message_id, ticket_id = excluded.ticket_id,
        is_internal = excluded.is_internal, deleted_at = excluded.deleted_at;
  return null;
end $$;

create trigger attachments_record_deletions after delete on public.attachments
  referencing old table as gone
  for each statement execute function private.attachments_record_deletions();

create or replace function private.attachments_reuse_guard() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if exists (select 1 from public.attachment_deletions d
             where d.id = new.id and (d.message_id <> new.message_id or d.ticket_id <> new.ticket_id)) then
    raise exception 'an attachment id is used once: this one was a deleted attachment of another message'
      using errcode = '23505';
  end if;
  -- locked: a delete of the message committing meanwhile is waited for, not missed (its trigger would not see
  -- this row to delete it)
  if (select m.deleted_at from public.messages m where m.id = new.message_id for share) is not null then
    raise exception 'the message was deleted: it takes no attachments' using errcode = '23503';
  end if;
  return new;
end $$;

create trigger attachments_reuse_guard before insert on public.attachments
  for each row execute function private.attachments_reuse_guard();

create or replace function private.attachments_clear_deletions() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public.attachment_deletions d using fresh f
  where d.id = f.id and d.message_id = f.message_id and d.ticket_id = f.ticket_id;
  return null;
end $$;

create trigger attachments_clear_deletions after insert on public.attachments
  referencing new table as fresh
  for each statement execute function private.attachments_clear_deletions();

-- the pull ---------------------------------------------------------------------------------------------------

create or replace function public.sync_attachment_deletions(after_xid bigint default 0, after_id bigint default 0,
                                                            max_rows integer default 1000)
returns setof public.attachment_deletions language sql stable security invoker set search_path = '' as $$
  select * from public.attachment_deletions r
  where (r.change_xid, r.change_id) > (coalesce(after_xid, 0), coalesce(after_id, 0))
    and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(coalesce(max_rows, 1), 1), 1000)
$$;

-- grants: exactly what this file creates; anon nothing --------------------------------------------------------

revoke all on public.attachment_deletions from public, anon, authenticated, service_role;
grant select on public.attachment_deletions to authenticated;
grant select on public.attachment_deletions to service_role;
revoke all on function private.attachments_record_deletions() from public, anon, authenticated, service_role;
revoke all on function private.attachments_clear_deletions() from public, anon, authenticated, service_role;
revoke all on function private.attachments_reuse_guard() from public, anon, authenticated, service_role;
revoke all on function private.messages_delete_attachments_first() from public, anon, authenticated, service_role;
revoke all on function public.sync_attachment_deletions(bigint, bigint, integer)
  from public, anon, authenticated, service_role;
grant execute on function public.sync_attachment_deletions(bigint, bigint, integer) to authenticated;

-- ============================================================================================================
-- sync_changed with 'ticket_snoozes' (20261216000100) and 'attachment_deletions': 20261208000300's body (no later
-- migration replaced it) with the two tables more; grants as there.
-- ============================================================================================================

create or replace function public.sync_changed(cursors jsonb)
returns text[] language plpgsql stable security invoker set search_path = '' as $$
declare
  entry record;
  x bigint;
  i bigint;
  past boolean;
  changed text[] := '{}';
begin
  if cursors is null or pg_catalog.jsonb_typeof(cursors) <> 'object'
     or (select count(*) from pg_catalog.jsonb_object_keys(cursors)) > 64 then
    raise exception 'cursors: expected an object of at most 64 {"table": [after_xid, after_id]}'
      using errcode = '22023';
  end if;
  for entry in select e.key, e.value from pg_catalog.jsonb_each(cursors) as e loop
    if pg_catalog.jsonb_typeof(entry.value) <> 'array' or pg_catalog.jsonb_array_length(entry.value) <> 2
       or pg_catalog.jsonb_typeof(entry.value -> 0) <> 'number'
       or pg_catalog.jsonb_typeof(entry.value -> 1) <> 'number'
       -- whole, not negative, within bigint: a fraction or 1e30 would fail the cast below with another code
       or (entry.value ->> 0) !~ '^[0-9]{1,18}$' or (entry.value ->> 1) !~ '^[0-9]{1,18}$' then
      raise exception 'cursors: % is not [after_xid, after_id]', entry.key using errcode = '22023';
    end if;
    if entry.key not in ('profiles', 'tickets', 'messages', 'attachments', 'ticket_reads', 'message_revisions', 'tags', 'ticket_tags', 'canned_replies', 'canned_reply_files', 'macros', 'saved_views', 'customer_notes', 'mentions', 'ticket_sla', 'ticket_snoozes', 'attachment_deletions') then
      raise exception 'not a synced table: %', entry.key using errcode = '22023';
    end if;
  end loop;
  for entry in select e.key, e.value from pg_catalog.jsonb_each(cursors) as e loop
    x := (entry.value ->> 0)::bigint;
    i := (entry.value ->> 1)::bigint;
    case entry.key
      when 'profiles' then past := exists (select 1 from public.profiles r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'tickets' then past := exists (select 1 from public.tickets r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'messages' then past := exists (select 1 from public.messages r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'attachments' then past := exists (select 1 from public.attachments r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_reads' then past := exists (select 1 from public.ticket_reads r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'message_revisions' then past := exists (select 1 from public.message_revisions r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'tags' then past := exists (select 1 from public.tags r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_tags' then past := exists (select 1 from public.ticket_tags r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'canned_replies' then past := exists (select 1 from public.canned_replies r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'canned_reply_files' then past := exists (select 1 from public.canned_reply_files r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'macros' then past := exists (select 1 from public.macros r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'saved_views' then past := exists (select 1 from public.saved_views r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'customer_notes' then past := exists (select 1 from public.customer_notes r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'mentions' then past := exists (select 1 from public.mentions r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_sla' then past := exists (select 1 from public.ticket_sla r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'ticket_snoozes' then past := exists (select 1 from public.ticket_snoozes r where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
      when 'attachment_deletions' then past := exists (select 1 from public.attachment_deletions r
                                     where (r.change_xid, r.change_id) > (x, i)
                                     order by r.change_xid, r.change_id limit 1);
    end case;
    if past then
      changed := changed || entry.key;
    end if;
  end loop;
  return changed;
end $$;

revoke all on function public.sync_changed(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.sync_changed(jsonb) to authenticated;
