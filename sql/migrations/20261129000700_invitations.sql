-- Invitations: an admin invites a person by email with the role they will have; the invitee accepts
-- by proving they read that mailbox. Works the same on Supabase: the app never holds a service key.
--
-- 1. An admin inserts (email, role) here (RLS: admins only), then asks Auth to email the address a
--    sign-in code (`signInWithOtp`, which creates the account if needed).
-- 2. The invitee signs in with that code (the session's JWT then has an `otp`/`magiclink`/`invite`
--    amr entry) and calls `accept_invitation()`, which sets their profile's role from the invitation.
-- The role comes only from the row an admin wrote: never from user_metadata, never from the caller.
-- An account older than the invitation cannot accept it (someone registered the address first, with
-- a password the invitee does not know); an admin changes that account's role instead.

create table public.invitations (
  email text primary key check (email = lower(email) and email like '%_@_%'),
  role text not null check (role in ('agent', 'admin', 'customer')),
  invited_by uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  accepted_at timestamptz,
  accepted_by uuid references public.profiles (id) on delete set null
);

alter table public.invitations enable row level security;

create policy invitations_admin_select on public.invitations for select to authenticated
  using (private.is_admin());
create policy invitations_admin_insert on public.invitations for insert to authenticated
  with check (private.is_admin() and invited_by = auth.uid() and accepted_at is null and accepted_by is null);
create policy invitations_admin_delete on public.invitations for delete to authenticated
  using (private.is_admin());

revoke all on public.invitations from anon, authenticated;  -- whatever default privileges exist
grant select, insert, delete on public.invitations to authenticated;
grant all on public.invitations to service_role;

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
  update public.profiles set role = invitation.role where id = me;
  update public.invitations set accepted_at = now(), accepted_by = me where email = address;
  return invitation.role;
end $$;

revoke execute on function public.accept_invitation() from public, anon;
grant execute on function public.accept_invitation() to authenticated, service_role;
