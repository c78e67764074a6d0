-- Accepting an invitation ends the account's other sessions instead of refusing while one exists.
--
-- Why: 20261211000500 refused the acceptance while the account had any session but the caller's. The invitation
-- email carries a link as well as a code (as GoTrue's does), and following it signs the invitee in (a second
-- session); so does an earlier try that stopped after the code was verified, or the account open on another device.
-- Each of those locked the invitee out of their invitation for good. Now the acceptance ends every other session
-- of the account (their refresh tokens go with them, `on delete cascade`) and, as before, clears the password the
-- account had, in the same transaction: whoever else held the account (an outsider who signed the invited address
-- up while the invitation had no account) can neither refresh nor sign in again.
-- Left, as in Supabase's model: an access token issued before the acceptance stays valid until it expires (at most
-- the JWT expiry, 1 h), and RLS reads the role from `profiles`, so such a token carries the new role meanwhile.
-- The function stays security definer with a fixed search_path; no API role may execute it (as before).

create or replace function private.invitation_takeover() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from auth.sessions s
   where s.user_id = new.accepted_by and s.id::text is distinct from auth.jwt() ->> 'session_id';
  update auth.users set encrypted_password = '' where id = new.accepted_by;  -- no earlier password signs in
  return new;
end $$;

revoke execute on function private.invitation_takeover() from public, anon, authenticated, service_role;
