-- Email notifications: an outbox filled by a trigger, drained by `supportchat notify` (notify/ in the repo).
--
-- public.notifications   one row per (recipient, message) that may deserve an email. Filled by a
--   statement trigger on messages, as the table owner; clients have no privilege on it at all (RLS on,
--   no policy, no grant), only the worker (a direct database connection) and the service role read it.
--   Who gets a row:
--     * a non-internal message from staff → the ticket's customer;
--     * a non-internal message from the customer → the ticket's assignee (an unassigned ticket is the
--       team's queue, watched in the app: no mail);
--     * any staff message (internal notes included) that mentions a staff member → that member.
--       Mention syntax: `@[Display Name](<user uuid>)` — the name is for people and plain-text
--       clients, the uuid is what counts (names change and repeat). A mention of a customer or of an
--       unknown id is ignored, and so is a staff member who cannot see the ticket (an agent while it is
--       assigned to someone else); nobody is notified of their own message.
--   state: queued → claimed (a worker took it, lease_until) → delivering (committed right before the
--   mail's final "." goes to the SMTP server) → sent; or skipped (read in time, deleted, preference
--   "never") / failed (permanent SMTP refusal or too many attempts), with a note. Retries go back to
--   queued with not_before in the future. See notify/README.md for why this cannot double-send.
--
-- public.notification_preferences   per user, written by that user only:
--   email = 'never' | 'unread' (mail what is still unread after unread_after_minutes, or the worker's
--   default delay when null) | 'always' (mail every message, read or not, without waiting).
--   No row means 'unread' with the worker's default delay.

create table public.notification_preferences (
  user_id uuid primary key default auth.uid() references public.profiles (id) on delete cascade,
  email text not null default 'unread' check (email in ('never', 'unread', 'always')),
  unread_after_minutes integer check (unread_after_minutes between 0 and 10080),
  updated_at timestamptz not null default now()
);

create or replace function private.notification_preferences_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and new.user_id <> old.user_id then
    raise exception 'a preference''s user_id cannot change' using errcode = '42501';
  end if;
  new.updated_at := now();
  return new;
end $$;

create trigger notification_preferences_guard before insert or update on public.notification_preferences
  for each row execute function private.notification_preferences_guard();

alter table public.notification_preferences enable row level security;
create policy notification_preferences_select on public.notification_preferences for select to authenticated
  using (user_id = (select auth.uid()));
create policy notification_preferences_insert on public.notification_preferences for insert to authenticated
  with check (user_id = (select auth.uid()));
create policy notification_preferences_update on public.notification_preferences for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

create table public.notifications (
  id bigint generated always as identity primary key,
  recipient_id uuid not null references public.profiles (id) on delete cascade,
  ticket_id uuid not null references public.tickets (id) on delete cascade,
  message_id uuid not null references public.messages (id) on delete cascade,
  reason text not null check (reason in ('reply', 'mention')),
  created_at timestamptz not null default now(),
  state text not null default 'queued'
    check (state in ('queued', 'claimed', 'delivering', 'sent', 'skipped', 'failed')),
  attempts integer not null default 0,
  not_before timestamptz not null default now(),
  claimed_by bigint,
  lease_until timestamptz,
  mail_id uuid,
  done_at timestamptz,
  note text,
  unique (recipient_id, message_id)
);

create index notifications_waiting_idx on public.notifications (created_at)
  where state in ('queued', 'claimed', 'delivering');
create index notifications_group_idx on public.notifications (recipient_id, ticket_id) where state = 'queued';
create index notifications_message_idx on public.notifications (message_id);
create index notifications_ticket_idx on public.notifications (ticket_id);

alter table public.notifications enable row level security;  -- and no policy: no client row, ever

create or replace function private.enqueue_notifications() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.notifications (recipient_id, ticket_id, message_id, reason)
  select r.recipient_id, i.ticket_id, i.id, r.reason
  from inserted i
  join public.tickets t on t.id = i.ticket_id
  join public.profiles s on s.id = i.sender_id
  cross join lateral (
    select t.customer_id as recipient_id, 'reply' as reason
    where not i.is_internal and s.role in ('agent', 'admin')
    union all
    select t.assignee_id, 'reply'
    where not i.is_internal and s.role = 'customer' and t.assignee_id is not null
    union all
    select p.id, 'mention'
    from (select distinct lower(m[1])::uuid as id
          from regexp_matches(i.content, '@\[[^\]\n]{0,200}\]\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)', 'g') m) x
    join public.profiles p on p.id = x.id and p.role in ('agent', 'admin')
    where s.role in ('agent', 'admin')
      -- only someone who can open the ticket: a mail must not show a note to an agent RLS keeps out
      and (p.role = 'admin' or t.assignee_id is null or t.assignee_id = p.id)
  ) r
  where r.recipient_id <> i.sender_id
  on conflict (recipient_id, message_id) do nothing;
  return null;
end $$;

create trigger messages_enqueue_notifications after insert on public.messages
  referencing new table as inserted
  for each statement execute function private.enqueue_notifications();

revoke all on public.notifications, public.notification_preferences from anon, authenticated;
grant select, insert, update (email, unread_after_minutes) on public.notification_preferences to authenticated;
grant select, insert, update, delete on public.notifications, public.notification_preferences to service_role;
grant usage, select on sequence public.notifications_id_seq to service_role;
revoke all on function private.notification_preferences_guard(), private.enqueue_notifications() from public, anon;

-- a user's preferences follow them to their other devices
alter publication supabase_realtime add table public.notification_preferences;
