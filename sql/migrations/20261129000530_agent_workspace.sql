-- The agent workspace's server schema (issue 14): canned replies, tags and ticket tags, saved views,
-- macros, customer notes, mentions, snooze. SLA is in the next migration.
--
-- Customers never see any of it: every policy here starts from private.is_staff(), and customers hold
-- no policy on these tables at all (they read nothing, write nothing).
--
-- Sync: every table carries (change_xid, change_id) stamped by private.stamp_change() and has a
-- public.sync_<table>() pull function with the same cursor rule as the first migration, and is in the
-- supabase_realtime publication. Rows are never hard-deleted by clients (a DELETE is invisible to pulls
-- and its realtime event reaches every subscriber): removing sets deleted_at (removed_at for ticket
-- tags), and the row stays as a tombstone.
--
--   canned_replies   owner_id null = shared (admins write), else personal (that staff member writes);
--                    staff read shared ones and their own.
--   macros           the same ownership; `actions` is a JSON object of ticket changes the app applies in
--                    one outbox transaction: {"status", "priority", "assignee" ("me" | "none" | uuid),
--                    "add_tags": [uuid], "remove_tags": [uuid]}; `reply` is optional reply text.
--   tags             admins define (name unique regardless of case, colour #rrggbb); staff read.
--   ticket_tags      staff who can see the ticket add and remove tags on it.
--   saved_views      per staff member, private to them: name, filters (JSON object), sort.
--   customer_notes   staff write notes about a customer; staff read them; author or admin edit/delete.
--   mentions         filled by a trigger from staff messages that mention staff as `@[Name](<uuid>)`
--                    (the syntax of the notifications migration), for mentioned staff who can see the
--                    ticket; each reads and marks seen only their own.
--   tickets.snoozed_until   a pending ticket wakes at that time: the inbox compares it with now(), and
--                    public.wake_snoozed_tickets() (run by `supportchat notify` every round, or pg_cron)
--                    turns due ones back to open on the server. A customer's reply wakes it at once
--                    (the first migration reopens pending tickets on a customer message). Any status
--                    but pending clears it; customers cannot set it.

-- canned replies ---------------------------------------------------------------------------------

create table public.canned_replies (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid references public.profiles (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 200),
  body text not null check (char_length(body) between 1 and 20000),
  shortcut text check (shortcut is null or shortcut ~ '^[a-z0-9_-]{1,40}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

-- shared things (owner null) are the admins'; personal ones their owner's, who must be staff
create or replace function private.may_write_owned(owner uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select case when owner is null then private.is_admin()
              else owner = auth.uid() and private.is_staff() end
$$;

create or replace function private.workspace_row_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    new.created_at := now();
    new.deleted_at := null;
  else
    if new.id <> old.id or new.created_at <> old.created_at then
      raise exception 'an id and created_at cannot change' using errcode = '42501';
    end if;
    if old.deleted_at is not null and new.deleted_at is null then
      raise exception 'a deleted row cannot be restored' using errcode = '42501';
    end if;
    if new.deleted_at is not null then
      new.deleted_at := coalesce(old.deleted_at, now());
    end if;
  end if;
  new.updated_at := now();
  return new;
end $$;

create or replace function private.owned_row_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and new.owner_id is distinct from old.owner_id then
    raise exception 'shared and personal items do not change owner' using errcode = '42501';
  end if;
  return new;
end $$;

create trigger canned_replies_guard before insert or update on public.canned_replies
  for each row execute function private.workspace_row_guard();
create trigger canned_replies_owner before update on public.canned_replies
  for each row execute function private.owned_row_guard();
create trigger canned_replies_change before insert or update on public.canned_replies
  for each row execute function private.stamp_change();

alter table public.canned_replies enable row level security;
create policy canned_replies_select on public.canned_replies for select to authenticated
  using ((select private.is_staff()) and (owner_id is null or owner_id = (select auth.uid())));
create policy canned_replies_insert on public.canned_replies for insert to authenticated
  with check (private.may_write_owned(owner_id));
create policy canned_replies_update on public.canned_replies for update to authenticated
  using (private.may_write_owned(owner_id)) with check (private.may_write_owned(owner_id));

-- macros -------------------------------------------------------------------------------------------

create or replace function private.valid_macro_actions(actions jsonb) returns boolean
language sql immutable set search_path = '' as $$
  select jsonb_typeof(actions) = 'object'
     and (select coalesce(bool_and(k in ('status', 'priority', 'assignee', 'add_tags', 'remove_tags')), true)
          from jsonb_object_keys(actions) k)
     and coalesce(actions ->> 'status' in ('open', 'pending', 'resolved', 'closed'), not actions ? 'status')
     and coalesce(actions ->> 'priority' in ('low', 'normal', 'high', 'urgent'), not actions ? 'priority')
     and coalesce(actions ->> 'assignee' in ('me', 'none')
                  or actions ->> 'assignee' ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
                  not actions ? 'assignee')
     and coalesce(jsonb_typeof(actions -> 'add_tags') = 'array', not actions ? 'add_tags')
     and coalesce(jsonb_typeof(actions -> 'remove_tags') = 'array', not actions ? 'remove_tags')
$$;

create table public.macros (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid references public.profiles (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  reply text check (reply is null or char_length(reply) between 1 and 10000),
  actions jsonb not null default '{}' check (private.valid_macro_actions(actions) and octet_length(actions::text) <= 8000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create trigger macros_guard before insert or update on public.macros
  for each row execute function private.workspace_row_guard();
create trigger macros_owner before update on public.macros
  for each row execute function private.owned_row_guard();
create trigger macros_change before insert or update on public.macros
  for each row execute function private.stamp_change();

alter table public.macros enable row level security;
create policy macros_select on public.macros for select to authenticated
  using ((select private.is_staff()) and (owner_id is null or owner_id = (select auth.uid())));
create policy macros_insert on public.macros for insert to authenticated
  with check (private.may_write_owned(owner_id));
create policy macros_update on public.macros for update to authenticated
  using (private.may_write_owned(owner_id)) with check (private.may_write_owned(owner_id));

-- tags ---------------------------------------------------------------------------------------------

create table public.tags (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 50 and name = btrim(name)),
  color text not null default '#64748b' check (color ~ '^#[0-9a-fA-F]{6}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);
create unique index tags_name_idx on public.tags (lower(name)) where deleted_at is null;

create trigger tags_guard before insert or update on public.tags
  for each row execute function private.workspace_row_guard();
create trigger tags_change before insert or update on public.tags
  for each row execute function private.stamp_change();

alter table public.tags enable row level security;
create policy tags_select on public.tags for select to authenticated using ((select private.is_staff()));
create policy tags_insert on public.tags for insert to authenticated with check ((select private.is_admin()));
create policy tags_update on public.tags for update to authenticated
  using ((select private.is_admin())) with check ((select private.is_admin()));

create table public.ticket_tags (
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  tag_id uuid not null references public.tags (id) on delete cascade,
  added_by uuid default auth.uid(),
  added_at timestamptz not null default now(),
  removed_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0,
  primary key (ticket_id, tag_id)
);
create index ticket_tags_tag_idx on public.ticket_tags (tag_id) where removed_at is null;

-- adding again after a removal is an upsert that clears removed_at; the server stamps who and when
create or replace function private.ticket_tags_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and (new.ticket_id <> old.ticket_id or new.tag_id <> old.tag_id) then
    raise exception 'a ticket tag''s ticket_id and tag_id cannot change' using errcode = '42501';
  end if;
  if tg_op = 'INSERT' or (old.removed_at is not null and new.removed_at is null) then
    new.added_by := auth.uid();
    new.added_at := now();
  else
    new.added_by := old.added_by;
    new.added_at := old.added_at;
  end if;
  if new.removed_at is not null then
    new.removed_at := case when tg_op = 'UPDATE' then coalesce(old.removed_at, now()) else null end;
  end if;
  return new;
end $$;

create trigger ticket_tags_guard before insert or update on public.ticket_tags
  for each row execute function private.ticket_tags_guard();
create trigger ticket_tags_change before insert or update on public.ticket_tags
  for each row execute function private.stamp_change();

create or replace function private.tag_is_live(tag uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.tags where id = tag and deleted_at is null)
$$;

alter table public.ticket_tags enable row level security;
create policy ticket_tags_select on public.ticket_tags for select to authenticated
  using ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t));
create policy ticket_tags_insert on public.ticket_tags for insert to authenticated
  with check ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t)
              and private.tag_is_live(tag_id));
create policy ticket_tags_update on public.ticket_tags for update to authenticated
  using ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t))
  with check ((select private.is_staff()) and ticket_id in (select t.id from public.tickets t)
              and (removed_at is not null or private.tag_is_live(tag_id)));

-- saved views --------------------------------------------------------------------------------------

create table public.saved_views (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 100),
  filters jsonb not null default '{}' check (jsonb_typeof(filters) = 'object' and octet_length(filters::text) <= 8000),
  sort text not null default 'last_message_desc'
    check (sort in ('last_message_desc', 'last_message_asc', 'created_desc', 'created_asc', 'priority_desc',
                    'sla_due_asc')),
  position integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create trigger saved_views_guard before insert or update on public.saved_views
  for each row execute function private.workspace_row_guard();
create trigger saved_views_owner before update on public.saved_views
  for each row execute function private.owned_row_guard();
create trigger saved_views_change before insert or update on public.saved_views
  for each row execute function private.stamp_change();

alter table public.saved_views enable row level security;
create policy saved_views_select on public.saved_views for select to authenticated
  using (owner_id = (select auth.uid()) and (select private.is_staff()));
create policy saved_views_insert on public.saved_views for insert to authenticated
  with check (owner_id = (select auth.uid()) and (select private.is_staff()));
create policy saved_views_update on public.saved_views for update to authenticated
  using (owner_id = (select auth.uid()) and (select private.is_staff()))
  with check (owner_id = (select auth.uid()) and (select private.is_staff()));

-- customer notes -----------------------------------------------------------------------------------

create table public.customer_notes (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.profiles (id) on delete cascade,
  author_id uuid not null default auth.uid(),  -- no second key to profiles: it would make embeds ambiguous
  body text not null check (char_length(body) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);
create index customer_notes_customer_idx on public.customer_notes (customer_id);

create or replace function private.customer_notes_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    if current_user in ('authenticated', 'anon') then
      new.author_id := auth.uid();
    end if;
    if private.user_role(new.customer_id) is distinct from 'customer' then
      raise exception 'notes are about customers' using errcode = '23514';
    end if;
  elsif new.customer_id <> old.customer_id or new.author_id <> old.author_id then
    raise exception 'a note''s customer and author cannot change' using errcode = '42501';
  end if;
  if tg_op = 'UPDATE' and old.deleted_at is not null then
    raise exception 'a deleted note cannot be changed' using errcode = '42501';
  end if;
  if new.deleted_at is not null then
    new.body := '(deleted)';
  end if;
  return new;
end $$;

create trigger customer_notes_rows before insert or update on public.customer_notes
  for each row execute function private.workspace_row_guard();
create trigger customer_notes_guard before insert or update on public.customer_notes
  for each row execute function private.customer_notes_guard();
create trigger customer_notes_change before insert or update on public.customer_notes
  for each row execute function private.stamp_change();

alter table public.customer_notes enable row level security;
create policy customer_notes_select on public.customer_notes for select to authenticated
  using ((select private.is_staff()));
create policy customer_notes_insert on public.customer_notes for insert to authenticated
  with check ((select private.is_staff()) and author_id = (select auth.uid()));
create policy customer_notes_update on public.customer_notes for update to authenticated
  using ((select private.is_staff()) and (author_id = (select auth.uid()) or (select private.is_admin())))
  with check ((select private.is_staff()));

-- mentions -----------------------------------------------------------------------------------------

create table public.mentions (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null references public.messages (id) on delete cascade,
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  mentioned_id uuid not null,  -- no key to profiles: messages→profiles embeds must stay unambiguous
  author_id uuid not null,
  created_at timestamptz not null default now(),
  seen_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0,
  unique (message_id, mentioned_id)
);
create index mentions_mentioned_idx on public.mentions (mentioned_id, created_at desc);

create or replace function private.record_mentions() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.mentions (message_id, ticket_id, mentioned_id, author_id, created_at)
  select i.id, i.ticket_id, p.id, i.sender_id, i.created_at
  from inserted i
  join public.tickets t on t.id = i.ticket_id
  join public.profiles s on s.id = i.sender_id and s.role in ('agent', 'admin')
  cross join lateral (
    select distinct lower(m[1])::uuid as id
    from regexp_matches(i.content, '@\[[^\]\n]{0,200}\]\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)', 'g') m
  ) x
  join public.profiles p on p.id = x.id and p.role in ('agent', 'admin')
  where p.id <> i.sender_id and (p.role = 'admin' or t.assignee_id is null or t.assignee_id = p.id)
  on conflict (message_id, mentioned_id) do nothing;
  return null;
end $$;

create trigger messages_record_mentions after insert on public.messages
  referencing new table as inserted
  for each statement execute function private.record_mentions();

-- the mentioned user marks a mention seen; nothing else changes
create or replace function private.mentions_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if (new.id, new.message_id, new.ticket_id, new.mentioned_id, new.author_id, new.created_at)
     is distinct from (old.id, old.message_id, old.ticket_id, old.mentioned_id, old.author_id, old.created_at) then
    raise exception 'only seen_at of a mention changes' using errcode = '42501';
  end if;
  new.seen_at := case when new.seen_at is null then null else least(new.seen_at, now()) end;
  return new;
end $$;

create trigger mentions_guard before update on public.mentions
  for each row execute function private.mentions_guard();
create trigger mentions_change before insert or update on public.mentions
  for each row execute function private.stamp_change();

alter table public.mentions enable row level security;
create policy mentions_select on public.mentions for select to authenticated
  using (mentioned_id = (select auth.uid()) and (select private.is_staff()));
create policy mentions_update on public.mentions for update to authenticated
  using (mentioned_id = (select auth.uid()) and (select private.is_staff()))
  with check (mentioned_id = (select auth.uid()));

-- a deleted message takes its mentions with it (their rows point at an empty tombstone)
create or replace function private.messages_drop_mentions() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public.mentions where message_id = new.id;
  return null;
end $$;

create trigger messages_drop_mentions after update on public.messages
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function private.messages_drop_mentions();

-- snooze ---------------------------------------------------------------------------------------------

alter table public.tickets add column snoozed_until timestamptz;
create index tickets_snoozed_idx on public.tickets (snoozed_until) where snoozed_until is not null;

create or replace function private.tickets_snooze_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and new.snoozed_until is distinct from old.snoozed_until
     and current_user in ('authenticated', 'anon') and not private.is_staff() then
    raise exception 'only staff snooze a ticket' using errcode = '42501';
  end if;
  if new.status <> 'pending' then
    new.snoozed_until := null;
  end if;
  return new;
end $$;

-- named to fire after tickets_guard (triggers fire in name order), so it sees the final status
create trigger tickets_snooze_guard before insert or update on public.tickets
  for each row execute function private.tickets_snooze_guard();

create or replace function public.wake_snoozed_tickets() returns integer
language plpgsql security definer set search_path = '' as $$
declare
  woke integer;
begin
  -- a definer runs as its owner, so the caller's API role comes from the request's claims (none: a
  -- direct connection, such as the notify worker's)
  if coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '') in ('authenticated', 'anon')
     and not private.is_staff() then
    raise exception 'only staff wake tickets' using errcode = '42501';
  end if;
  update public.tickets set status = 'open' where status = 'pending' and snoozed_until <= now();
  get diagnostics woke = row_count;
  return woke;
end $$;

-- pulls ----------------------------------------------------------------------------------------------

create or replace function public.sync_canned_replies(after_xid bigint default 0, after_id bigint default 0,
                                                      max_rows integer default 1000)
returns setof public.canned_replies language sql stable as $$
  select * from public.canned_replies r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_macros(after_xid bigint default 0, after_id bigint default 0,
                                              max_rows integer default 1000)
returns setof public.macros language sql stable as $$
  select * from public.macros r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_tags(after_xid bigint default 0, after_id bigint default 0,
                                            max_rows integer default 1000)
returns setof public.tags language sql stable as $$
  select * from public.tags r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_ticket_tags(after_xid bigint default 0, after_id bigint default 0,
                                                   max_rows integer default 1000)
returns setof public.ticket_tags language sql stable as $$
  select * from public.ticket_tags r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_saved_views(after_xid bigint default 0, after_id bigint default 0,
                                                   max_rows integer default 1000)
returns setof public.saved_views language sql stable as $$
  select * from public.saved_views r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_customer_notes(after_xid bigint default 0, after_id bigint default 0,
                                                      max_rows integer default 1000)
returns setof public.customer_notes language sql stable as $$
  select * from public.customer_notes r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;
create or replace function public.sync_mentions(after_xid bigint default 0, after_id bigint default 0,
                                                max_rows integer default 1000)
returns setof public.mentions language sql stable as $$
  select * from public.mentions r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id limit least(greatest(max_rows, 1), 1000)
$$;

create index canned_replies_change_idx on public.canned_replies (change_xid, change_id);
create index macros_change_idx on public.macros (change_xid, change_id);
create index tags_change_idx on public.tags (change_xid, change_id);
create index ticket_tags_change_idx on public.ticket_tags (change_xid, change_id);
create index saved_views_change_idx on public.saved_views (change_xid, change_id);
create index customer_notes_change_idx on public.customer_notes (change_xid, change_id);
create index mentions_change_idx on public.mentions (change_xid, change_id);

-- grants: clients never DELETE (tombstones instead); anon nothing -------------------------------------

revoke all on public.canned_replies, public.macros, public.tags, public.ticket_tags, public.saved_views,
  public.customer_notes, public.mentions from anon, authenticated;
grant select, insert, update on public.canned_replies, public.macros, public.tags, public.ticket_tags,
  public.saved_views, public.customer_notes to authenticated;
grant select, update (seen_at) on public.mentions to authenticated;
grant select, insert, update, delete on public.canned_replies, public.macros, public.tags, public.ticket_tags,
  public.saved_views, public.customer_notes, public.mentions to service_role;

revoke execute on function public.sync_canned_replies(bigint, bigint, integer), public.sync_macros(bigint, bigint, integer),
  public.sync_tags(bigint, bigint, integer), public.sync_ticket_tags(bigint, bigint, integer),
  public.sync_saved_views(bigint, bigint, integer), public.sync_customer_notes(bigint, bigint, integer),
  public.sync_mentions(bigint, bigint, integer), public.wake_snoozed_tickets() from public, anon;
grant execute on function public.sync_canned_replies(bigint, bigint, integer), public.sync_macros(bigint, bigint, integer),
  public.sync_tags(bigint, bigint, integer), public.sync_ticket_tags(bigint, bigint, integer),
  public.sync_saved_views(bigint, bigint, integer), public.sync_customer_notes(bigint, bigint, integer),
  public.sync_mentions(bigint, bigint, integer), public.wake_snoozed_tickets() to authenticated, service_role;

revoke all on function private.may_write_owned(uuid), private.workspace_row_guard(), private.owned_row_guard(),
  private.valid_macro_actions(jsonb), private.ticket_tags_guard(), private.tag_is_live(uuid),
  private.customer_notes_guard(), private.record_mentions(), private.mentions_guard(),
  private.messages_drop_mentions(), private.tickets_snooze_guard() from public, anon;
grant execute on function private.may_write_owned(uuid), private.valid_macro_actions(jsonb), private.tag_is_live(uuid)
  to authenticated, service_role;

alter publication supabase_realtime add table public.canned_replies, public.macros, public.tags, public.ticket_tags,
  public.saved_views, public.customer_notes, public.mentions;
