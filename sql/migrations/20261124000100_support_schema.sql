-- SupportChat schema: profiles, tickets, messages, ticket_reads, their RLS policies, indexes and
-- the realtime publication. Applies unchanged to a real Supabase project (`supabase db push`) and
-- to localbase (after sql/local/ gave plain PostgreSQL what Supabase already has).
--
-- Who may do what (PostgreSQL enforces all of it; the app only mirrors it in the UI):
--   customer  sees own tickets and their non-internal messages; creates tickets for self; writes
--             messages into own non-closed tickets as self, never internal; may resolve, close or
--             reopen (not a closed one) own tickets and change nothing else on them.
--   agent     sees tickets assigned to them and unassigned ones, with all their messages (internal
--             notes included); writes messages and notes as self; takes, releases and updates
--             those tickets; cannot assign a ticket to someone else.
--   admin     everything, including roles and assignment to anyone.
--   anon      nothing.
--   Nobody rewrites another user's message, a message's sender_id, ticket_id, created_at or
--   is_internal; created_at is always the server clock.
--
-- The change cursor (how incremental pulls never skip a row committed late)
-- --------------------------------------------------------------------------
-- Every synced row carries (change_xid, change_id), stamped by a trigger on each insert and update:
--   change_xid = the writing transaction's id (pg_current_xact_id(), 64-bit, never wraps),
--   change_id  = nextval of one global sequence.
-- A sequence or a timestamp alone is not a safe cursor: values are taken when the row is written,
-- not when the transaction commits, so a transaction that took id 5 and commits after another
-- that took id 6 becomes visible behind a cursor that already passed 6, and the row is skipped.
-- The pull functions (public.sync_<table>) therefore return only rows whose change_xid is below
-- the reading snapshot's xmin, the oldest transaction still in progress. Every transaction below
-- xmin has finished (committed or rolled back), so no row can appear later below that horizon;
-- every transaction still running, or yet to write, has an xid >= xmin and so sorts after any
-- cursor a client holds. Rows come ordered by (change_xid, change_id); the client keeps the last
-- pair it saw as its cursor and asks for rows strictly after it. A long-running transaction only
-- delays rows behind it (they stay invisible to pulls until it ends); it never loses them.
-- Consequences for clients: a ticket that becomes visible to a user (assigned to them) brings
-- messages older than their cursor, so a client backfills a newly visible ticket's thread by
-- ticket_id; a ticket that stops being visible is noticed by comparing ticket ids.

create schema if not exists private;
grant usage on schema private to authenticated, service_role;

create sequence private.change_seq as bigint;

create or replace function private.stamp_change() returns trigger
language plpgsql as $$
begin
  new.change_xid := pg_current_xact_id()::text::bigint;
  new.change_id := nextval('private.change_seq');
  return new;
end $$;

-- profiles ------------------------------------------------------------------------------------

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  role text not null default 'customer' check (role in ('customer', 'agent', 'admin')),
  display_name text not null default '' check (char_length(display_name) <= 100),
  avatar_url text check (avatar_url is null or char_length(avatar_url) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create or replace function private.user_role(uid uuid) returns text
language sql stable security definer set search_path = '' as $$
  select role from public.profiles where id = uid
$$;

create or replace function private.is_staff() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select role in ('agent', 'admin') from public.profiles where id = auth.uid()), false)
$$;

create or replace function private.is_admin() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select role = 'admin' from public.profiles where id = auth.uid()), false)
$$;

-- a new auth user gets a profile; the role comes from app_metadata (service-controlled), never
-- from user_metadata (the user writes that one at sign-up)
create or replace function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  wanted text := new.raw_app_meta_data ->> 'role';
begin
  insert into public.profiles (id, role, display_name)
  values (
    new.id,
    case when wanted in ('customer', 'agent', 'admin') then wanted else 'customer' end,
    left(coalesce(nullif(new.raw_user_meta_data ->> 'display_name', ''),
                  nullif(new.raw_user_meta_data ->> 'full_name', ''),
                  split_part(coalesce(new.email, ''), '@', 1)), 100)
  );
  return new;
end $$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();

-- the Auth admin API (service key) changes app_metadata.role: follow it
create or replace function private.handle_user_role_change() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  wanted text := new.raw_app_meta_data ->> 'role';
begin
  if wanted in ('customer', 'agent', 'admin')
     and wanted is distinct from (old.raw_app_meta_data ->> 'role') then
    update public.profiles set role = wanted where id = new.id;
  end if;
  return new;
end $$;

create trigger on_auth_user_role_changed
  after update of raw_app_meta_data on auth.users
  for each row execute function private.handle_user_role_change();

-- security invoker on purpose: current_user is then the API role that ran the statement, so the
-- service role and the definer functions above pass while signed-in users are checked
create or replace function private.profiles_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  if new.id <> old.id or new.created_at <> old.created_at then
    raise exception 'a profile''s id and created_at cannot change' using errcode = '42501';
  end if;
  if current_user in ('authenticated', 'anon') and new.role is distinct from old.role
     and not private.is_admin() then
    raise exception 'only admins change roles' using errcode = '42501';
  end if;
  return new;
end $$;

create trigger profiles_guard before update on public.profiles
  for each row execute function private.profiles_guard();
create trigger profiles_change before insert or update on public.profiles
  for each row execute function private.stamp_change();

alter table public.profiles enable row level security;

-- customers see themselves and the staff who answer them; staff see everyone
create policy profiles_select on public.profiles for select to authenticated
  using (id = auth.uid() or role in ('agent', 'admin') or private.is_staff());
create policy profiles_update_self on public.profiles for update to authenticated
  using (id = auth.uid()) with check (id = auth.uid());
create policy profiles_update_admin on public.profiles for update to authenticated
  using (private.is_admin()) with check (private.is_admin());

-- tickets -------------------------------------------------------------------------------------

create table public.tickets (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  assignee_id uuid references public.profiles (id) on delete set null,
  subject text not null check (char_length(subject) between 1 and 200),
  status text not null default 'open' check (status in ('open', 'pending', 'resolved', 'closed')),
  priority text not null default 'normal' check (priority in ('low', 'normal', 'high', 'urgent')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_message_at timestamptz not null default now(),
  first_response_at timestamptz,
  resolved_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create or replace function private.ticket_is_closed(ticket uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select status = 'closed' from public.tickets where id = ticket), true)
$$;

create or replace function private.tickets_before_insert() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.created_at := now();
  new.updated_at := now();
  new.last_message_at := now();
  new.first_response_at := null;
  new.resolved_at := case when new.status in ('resolved', 'closed') then now() end;
  return new;
end $$;

create or replace function private.tickets_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  who text;
begin
  new.updated_at := now();
  if new.id <> old.id or new.created_at <> old.created_at then
    raise exception 'a ticket''s id and created_at cannot change' using errcode = '42501';
  end if;
  if new.status in ('resolved', 'closed') and old.status not in ('resolved', 'closed') then
    new.resolved_at := now();
  elsif new.status in ('open', 'pending') then
    new.resolved_at := null;
  end if;
  if current_user not in ('authenticated', 'anon') then
    return new;  -- service role, or the system triggers below
  end if;
  new.last_message_at := old.last_message_at;
  new.first_response_at := old.first_response_at;
  who := private.user_role(auth.uid());
  if who = 'admin' then
    return new;
  end if;
  if new.customer_id <> old.customer_id then
    raise exception 'only admins move a ticket to another customer' using errcode = '42501';
  end if;
  if who = 'customer' then
    if new.subject <> old.subject or new.priority <> old.priority
       or new.assignee_id is distinct from old.assignee_id then
      raise exception 'customers can only change the status of their tickets' using errcode = '42501';
    end if;
    if new.status <> old.status and (old.status = 'closed' or new.status = 'pending') then
      raise exception 'a closed ticket cannot be reopened by the customer; open a new ticket'
        using errcode = '42501';
    end if;
  elsif who = 'agent' then
    if new.assignee_id is distinct from old.assignee_id
       and new.assignee_id is not null and new.assignee_id <> auth.uid() then
      raise exception 'agents take or release tickets; only admins assign them to someone else'
        using errcode = '42501';
    end if;
  end if;
  return new;
end $$;

create trigger tickets_before_insert before insert on public.tickets
  for each row execute function private.tickets_before_insert();
create trigger tickets_guard before update on public.tickets
  for each row execute function private.tickets_guard();
create trigger tickets_change before insert or update on public.tickets
  for each row execute function private.stamp_change();

alter table public.tickets enable row level security;

-- policies wrap the caller's identity in (select ...) so PostgreSQL evaluates it once per statement
-- (an initplan) instead of once per row; the message policies test membership in the visible
-- tickets, a set computed once, instead of calling a function per row
create policy tickets_select on public.tickets for select to authenticated
  using (customer_id = (select auth.uid())
         or (select private.is_admin())
         or ((select private.user_role(auth.uid())) = 'agent'
             and (assignee_id = (select auth.uid()) or assignee_id is null)));
create policy tickets_insert_customer on public.tickets for insert to authenticated
  with check (customer_id = auth.uid() and assignee_id is null and status = 'open');
create policy tickets_insert_staff on public.tickets for insert to authenticated
  with check (private.is_admin()
              or (private.is_staff() and (assignee_id is null or assignee_id = auth.uid())));
create policy tickets_update_customer on public.tickets for update to authenticated
  using (customer_id = auth.uid()) with check (customer_id = auth.uid());
create policy tickets_update_agent on public.tickets for update to authenticated
  using (private.user_role(auth.uid()) = 'agent' and (assignee_id = auth.uid() or assignee_id is null))
  with check (private.user_role(auth.uid()) = 'agent' and (assignee_id = auth.uid() or assignee_id is null));
create policy tickets_update_admin on public.tickets for update to authenticated
  using (private.is_admin()) with check (private.is_admin());
create policy tickets_delete_admin on public.tickets for delete to authenticated
  using (private.is_admin());

-- messages ------------------------------------------------------------------------------------

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  sender_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  content text not null check (char_length(content) between 1 and 10000),
  is_internal boolean not null default false,
  created_at timestamptz not null default now(),
  edited_at timestamptz,
  deleted_at timestamptz,
  change_xid bigint not null default 0,
  change_id bigint not null default 0
);

create or replace function private.messages_before_insert() returns trigger
language plpgsql set search_path = '' as $$
begin
  -- the server clock orders threads, whatever the client sent
  new.created_at := now();
  new.edited_at := null;
  new.deleted_at := null;
  return new;
end $$;

create or replace function private.messages_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.id <> old.id or new.ticket_id <> old.ticket_id or new.sender_id <> old.sender_id
     or new.created_at <> old.created_at or new.is_internal <> old.is_internal then
    raise exception 'a message''s id, ticket_id, sender_id, created_at and is_internal cannot change'
      using errcode = '42501';
  end if;
  if new.content <> old.content then
    new.edited_at := now();
  else
    new.edited_at := old.edited_at;
  end if;
  if new.deleted_at is not null then
    new.deleted_at := coalesce(old.deleted_at, now());
  end if;
  return new;
end $$;

-- new messages move their ticket: last activity, first response, and a customer's reply reopens a
-- ticket that waited on them or was resolved. Statement-level with a transition table, so a batch
-- of a thousand messages updates each ticket once instead of a thousand times.
create or replace function private.messages_after_insert() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.tickets t set
    last_message_at = greatest(t.last_message_at, s.last_at),
    first_response_at = coalesce(t.first_response_at, s.first_staff_at),
    status = case when s.customer_wrote and t.status in ('pending', 'resolved') then 'open' else t.status end
  from (
    select i.ticket_id,
           max(i.created_at) as last_at,
           min(i.created_at) filter (where p.role in ('agent', 'admin') and not i.is_internal) as first_staff_at,
           coalesce(bool_or(p.role = 'customer'), false) as customer_wrote
    from inserted i join public.profiles p on p.id = i.sender_id
    group by i.ticket_id
  ) s
  where t.id = s.ticket_id;
  return null;
end $$;

create trigger messages_before_insert before insert on public.messages
  for each row execute function private.messages_before_insert();
create trigger messages_guard before update on public.messages
  for each row execute function private.messages_guard();
create trigger messages_change before insert or update on public.messages
  for each row execute function private.stamp_change();
create trigger messages_after_insert after insert on public.messages
  referencing new table as inserted
  for each statement execute function private.messages_after_insert();

alter table public.messages enable row level security;

create policy messages_select on public.messages for select to authenticated
  using (ticket_id in (select t.id from public.tickets t) and (not is_internal or (select private.is_staff())));
create policy messages_insert on public.messages for insert to authenticated
  with check (
    sender_id = (select auth.uid())
    and ticket_id in (select t.id from public.tickets t)
    and ((select private.is_staff()) or (not is_internal and not private.ticket_is_closed(ticket_id)))
  );
create policy messages_update_own on public.messages for update to authenticated
  using (sender_id = (select auth.uid()) and ticket_id in (select t.id from public.tickets t))
  with check (sender_id = (select auth.uid()) and ticket_id in (select t.id from public.tickets t));

-- ticket_reads --------------------------------------------------------------------------------

create table public.ticket_reads (
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  last_read_at timestamptz not null default now(),
  change_xid bigint not null default 0,
  change_id bigint not null default 0,
  primary key (ticket_id, user_id)
);

-- a read marker never moves backwards (two devices, an old retry) nor into the future
create or replace function private.ticket_reads_clamp() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.last_read_at := least(new.last_read_at, now());
  if tg_op = 'UPDATE' then
    if new.ticket_id <> old.ticket_id or new.user_id <> old.user_id then
      raise exception 'a read marker''s ticket_id and user_id cannot change' using errcode = '42501';
    end if;
    new.last_read_at := greatest(new.last_read_at, old.last_read_at);
  end if;
  return new;
end $$;

create trigger ticket_reads_clamp before insert or update on public.ticket_reads
  for each row execute function private.ticket_reads_clamp();
create trigger ticket_reads_change before insert or update on public.ticket_reads
  for each row execute function private.stamp_change();

alter table public.ticket_reads enable row level security;

create policy ticket_reads_select on public.ticket_reads for select to authenticated
  using (ticket_id in (select t.id from public.tickets t));
create policy ticket_reads_insert on public.ticket_reads for insert to authenticated
  with check (user_id = (select auth.uid()) and ticket_id in (select t.id from public.tickets t));
create policy ticket_reads_update on public.ticket_reads for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()) and ticket_id in (select t.id from public.tickets t));

-- incremental pulls (see the cursor note at the top) -------------------------------------------

create or replace function public.sync_horizon() returns bigint
language sql stable as $$
  select pg_snapshot_xmin(pg_current_snapshot())::text::bigint
$$;

create or replace function public.sync_profiles(after_xid bigint default 0, after_id bigint default 0,
                                                max_rows integer default 1000)
returns setof public.profiles language sql stable as $$
  select * from public.profiles r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_tickets(after_xid bigint default 0, after_id bigint default 0,
                                               max_rows integer default 1000)
returns setof public.tickets language sql stable as $$
  select * from public.tickets r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_messages(after_xid bigint default 0, after_id bigint default 0,
                                                max_rows integer default 1000)
returns setof public.messages language sql stable as $$
  select * from public.messages r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

create or replace function public.sync_ticket_reads(after_xid bigint default 0, after_id bigint default 0,
                                                    max_rows integer default 1000)
returns setof public.ticket_reads language sql stable as $$
  select * from public.ticket_reads r
  where (r.change_xid, r.change_id) > (after_xid, after_id) and r.change_xid < public.sync_horizon()
  order by r.change_xid, r.change_id
  limit least(greatest(max_rows, 1), 1000)
$$;

-- indexes for the queries the app and the pulls run -----------------------------------------------

create index tickets_assignee_activity_idx on public.tickets (assignee_id, status, last_message_at desc);
create index tickets_customer_activity_idx on public.tickets (customer_id, last_message_at desc);
create index tickets_unassigned_idx on public.tickets (last_message_at desc) where assignee_id is null;
create index tickets_change_idx on public.tickets (change_xid, change_id);
create index messages_ticket_created_idx on public.messages (ticket_id, created_at desc);
create index messages_sender_idx on public.messages (sender_id);
create index messages_change_idx on public.messages (change_xid, change_id);
create index profiles_change_idx on public.profiles (change_xid, change_id);
create index ticket_reads_user_idx on public.ticket_reads (user_id);
create index ticket_reads_change_idx on public.ticket_reads (change_xid, change_id);

-- grants: RLS decides for signed-in users; anon gets nothing at all ------------------------------

revoke all on public.profiles, public.tickets, public.messages, public.ticket_reads from anon;
revoke execute on function public.sync_horizon(), public.sync_profiles(bigint, bigint, integer),
  public.sync_tickets(bigint, bigint, integer), public.sync_messages(bigint, bigint, integer),
  public.sync_ticket_reads(bigint, bigint, integer) from anon, public;
grant execute on function public.sync_horizon(), public.sync_profiles(bigint, bigint, integer),
  public.sync_tickets(bigint, bigint, integer), public.sync_messages(bigint, bigint, integer),
  public.sync_ticket_reads(bigint, bigint, integer) to authenticated, service_role;
revoke all on all functions in schema private from public, anon;
grant execute on all functions in schema private to authenticated, service_role;
grant usage, select on sequence private.change_seq to authenticated, service_role;

-- realtime ------------------------------------------------------------------------------------

alter publication supabase_realtime add table public.profiles, public.tickets, public.messages, public.ticket_reads;
