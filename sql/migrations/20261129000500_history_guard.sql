-- History cannot be rewritten.
--
--   * tickets.resolved_at and tickets.first_response_at are kept by the server alone: resolved_at
--     follows status changes (set when a ticket becomes resolved or closed, cleared when it opens
--     again), first_response_at is set by the messages trigger on the first non-internal staff
--     reply. A signed-in user who sends either column with another value gets 42501; the service
--     role's values are ignored the same way (it is not a way to forge history either).
--   * nobody edits a message in a closed ticket (its content is frozen with the ticket);
--   * a deleted message stays deleted (an undelete is refused) and is never edited again.
--
-- Both guards are replaced whole (create or replace), keeping every earlier rule.

create or replace function private.tickets_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  who text;
  api_user boolean := current_user in ('authenticated', 'anon');
begin
  new.updated_at := now();
  if new.id <> old.id or new.created_at <> old.created_at then
    raise exception 'a ticket''s id and created_at cannot change' using errcode = '42501';
  end if;
  if api_user and (new.resolved_at is distinct from old.resolved_at
                   or new.first_response_at is distinct from old.first_response_at) then
    raise exception 'resolved_at and first_response_at are kept by the server' using errcode = '42501';
  end if;
  if new.status in ('resolved', 'closed') and old.status not in ('resolved', 'closed') then
    new.resolved_at := now();
  elsif new.status in ('open', 'pending') then
    new.resolved_at := null;
  else
    new.resolved_at := old.resolved_at;
  end if;
  -- only the messages trigger (a trigger inside a trigger) moves first_response_at
  if pg_trigger_depth() < 2 then
    new.first_response_at := old.first_response_at;
  end if;
  if not api_user then
    return new;  -- service role, or the system triggers
  end if;
  new.last_message_at := old.last_message_at;
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

create or replace function private.messages_guard() returns trigger
language plpgsql set search_path = '' as $$
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
    if new.content <> old.content then
      raise exception 'a deleted message cannot be edited' using errcode = '42501';
    end if;
  end if;
  if new.content <> old.content then
    if private.ticket_is_closed(new.ticket_id) then
      raise exception 'messages in a closed ticket cannot be edited' using errcode = '42501';
    end if;
    new.edited_at := now();
  else
    new.edited_at := old.edited_at;
  end if;
  if new.deleted_at is not null then
    new.deleted_at := coalesce(old.deleted_at, now());
  end if;
  return new;
end $$;

revoke all on function private.tickets_guard(), private.messages_guard() from public, anon;
