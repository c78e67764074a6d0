-- The customer-role check of 20261215000600 acts for staff callers only: it told a customer which user ids are staff.
--
-- Why (review17c, LOW): `tickets_customer_role` is a BEFORE ROW trigger, and those fire before the tickets' RLS
-- checks (WITH CHECK). A customer may only open tickets of their own (`customer_id = auth.uid()`), so any other id
-- they name is refused anyway; but the trigger's own refusal came first for a staff id ("a ticket's customer must be
-- a customer account") and RLS's generic one for anyone else, so a customer learned whether an id is a staff account.
--
-- How: the same function, which now returns at once unless the caller's own profile is staff (by `profiles.role`,
-- not `private.is_staff()`: a staff member whose session is no longer live is refused by RLS as a customer would be,
-- except for naming themselves, the column's default, which this check still refuses). A customer's write is left
-- to RLS and `tickets_guard`, which refuse every id but their own with the same words. What staff learn is unchanged
-- (they read every profile's role). Replaces `private.tickets_customer_role()` as 20261215000600 wrote it, with the
-- one condition added; the trigger itself is unchanged.
--
-- Grants: the trigger function stays executable by its owner only (restated).

create or replace function private.tickets_customer_role() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  -- a definer runs as its owner, so the caller's API role comes from the request's claims (none: a direct
  -- connection), as in public.wake_snoozed_tickets()
  if coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '')
     not in ('authenticated', 'anon') then
    return new;
  end if;
  -- a customer (or anon) caller: RLS decides, with one refusal for every id that is not theirs
  if not exists (select 1 from public.profiles p where p.id = auth.uid() and p.role <> 'customer') then
    return new;
  end if;
  if exists (select 1 from public.profiles p where p.id = new.customer_id and p.role <> 'customer') then
    raise exception 'a ticket''s customer must be a customer account' using errcode = '42501',
      detail = 'Open the ticket for a customer: staff accounts cannot be a ticket''s customer.';
  end if;
  return new;
end $$;

revoke all on function private.tickets_customer_role() from public, anon, authenticated, service_role;
