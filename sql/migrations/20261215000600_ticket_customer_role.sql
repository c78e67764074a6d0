-- A ticket's customer is a customer: an API write that sets `tickets.customer_id` to a staff account is refused.
--
-- Why (mend17, LOW): `tickets_insert_staff` (20261213000100) checks only the assignee, so an agent could create a
-- ticket whose customer was an admin, another agent or themselves (the column defaults to the caller), and an
-- admin could move a ticket to one (`tickets_guard` lets admins change `customer_id`). That staff member then read
-- the ticket as its customer and was mailed its replies as one. Staff still open tickets on a customer's behalf
-- (REST, with the customer's id); the app's New ticket is a customer's own.
--
-- How: a before insert / update of customer_id trigger, `tickets_customer_role`, raises 42501 "a ticket's customer
-- must be a customer account" when the named profile's role is not 'customer' (a plain error instead of RLS's
-- generic refusal; a missing profile is left to the foreign key). It reads `profiles.role` itself (security
-- definer: a customer's RLS shows no other customer's profile), not `private.user_role`, which answers 'customer'
-- for a staff caller's own id without a live session. Only the API roles are held to it (by the request's JWT role,
-- as `wake_snoozed_tickets` asks: a definer's current_user is its owner): the service role and direct connections
-- are not (recovery, seeding). An account whose role changes later
-- keeps its tickets.
--
-- Grants: the trigger function is executable by its owner only.

create or replace function private.tickets_customer_role() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  -- a definer runs as its owner, so the caller's API role comes from the request's claims (none: a direct
  -- connection), as in public.wake_snoozed_tickets()
  if coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', '')
     not in ('authenticated', 'anon') then
    return new;
  end if;
  if exists (select 1 from public.profiles p where p.id = new.customer_id and p.role <> 'customer') then
    raise exception 'a ticket''s customer must be a customer account' using errcode = '42501',
      detail = 'Open the ticket for a customer: staff accounts cannot be a ticket''s customer.';
  end if;
  return new;
end $$;

revoke all on function private.tickets_customer_role() from public, anon, authenticated, service_role;

create trigger tickets_customer_role before insert or update of customer_id on public.tickets
  for each row execute function private.tickets_customer_role();
