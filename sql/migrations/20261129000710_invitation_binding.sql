-- Invitations are bound to the account created for the invited address, not to whatever address a
-- session's JWT carries at the time it accepts.
--
-- Why: with email confirmations off (the Supabase CLI default, and localbase's), GoTrue applies
-- `PUT /user {"email": ...}` at once and the session keeps its `otp` amr entry. So before this
-- migration an outsider could sign in with a code sent to their own mailbox, switch their email to an
-- invited address that had no account yet, refresh, and accept the invitation (an admin role, say).
-- Now the account Auth inserts for the invited address is recorded on the invitation (a trigger on
-- `auth.users`, security definer, fixed search_path) and only that account may accept it; changing an
-- existing account's email to the address records nothing.

alter table public.invitations add column invitee uuid;

comment on column public.invitations.invitee is
  'the auth user created for this address after the invitation (set by a trigger; only it may accept)';

create or replace function private.bind_invitation() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.invitations set invitee = new.id
   where email = lower(new.email) and accepted_at is null and invitee is null;
  return null;
end $$;

revoke execute on function private.bind_invitation() from public, anon, authenticated, service_role;

create trigger on_auth_user_created_bind_invitation
  after insert on auth.users for each row execute function private.bind_invitation();

-- admins may not point an invitation at an account themselves: only the trigger sets `invitee`
drop policy invitations_admin_insert on public.invitations;
create policy invitations_admin_insert on public.invitations for insert to authenticated
  with check (private.is_admin() and invited_by = auth.uid() and accepted_at is null and accepted_by is null
              and invitee is null);

create or replace function public.accept_invitation() returns text
language plpgsql security definer set search_path = '' as $$
declare
  me uuid := auth.uid();
  address text := lower(coalesce(auth.jwt() ->> 'email', ''));
  invitation public.invitations;
  joined timestamptz;
begin
  if me is null then
    raise exception 'sign in with the emailed code first' using errcode = '42501';
  end if;
  if not exists (select 1 from jsonb_array_elements(coalesce(auth.jwt() -> 'amr', '[]'::jsonb)) entry
                 where entry ->> 'method' in ('otp', 'magiclink', 'invite')) then
    raise exception 'an invitation is accepted with the code or link emailed to you' using errcode = '42501';
  end if;
  select * into invitation from public.invitations where email = address and accepted_at is null for update;
  if not found then
    raise exception 'there is no pending invitation for %', address using errcode = 'P0002';
  end if;
  select created_at into joined from public.profiles where id = me;
  if joined is null or joined < invitation.created_at then
    raise exception 'this address had an account before it was invited; ask an admin to change its role'
      using errcode = '42501';
  end if;
  if invitation.invitee is distinct from me then
    raise exception 'only the account created for % after the invitation may accept it', address
      using errcode = '42501';
  end if;
  update public.profiles set role = invitation.role where id = me;
  update public.invitations set accepted_at = now(), accepted_by = me where email = address;
  return invitation.role;
end $$;

revoke execute on function public.accept_invitation() from public, anon;
grant execute on function public.accept_invitation() to authenticated, service_role;
