-- Accepting an invitation takes the account from whoever else held it: refused while another session of the
-- account exists, and the password the account had before is cleared (the invitee sets their own next).
--
-- Why (review14, invitation pre-hijack): the account bound to an invitation is whichever one Auth inserts for the
-- address after the invitation (migration 20261129000710). The admin's `signInWithOtp` creates it, but if that
-- call fails after the invitation row committed (the project's email budget spent by anyone's `/otp` requests,
-- the mail server down), Auth rolls its new user back and the invitation has no account. Anyone who knows the
-- address could then `/signup` it with a password of their own: that account is the one the trigger binds. The
-- real invitee, sent a code later, signs in to that same account and accepts, and the role landed on an account
-- whose password the outsider knows (with confirmations on, the invitee's code even confirms it for them), and a
-- session the outsider held carried the role at once.
--
-- The password cannot tell the two apart (Auth gives an account `signInWithOtp` creates a random one), so:
-- * another session of the account (not the caller's, `session_id` of the JWT) refuses the acceptance: the
--   outsider signed up or in with their password; the invitee asks an admin to have the account removed;
-- * the acceptance clears the account's password in the same transaction, so a password chosen before it (an
--   outsider's, with confirmations on: they never had a session) no longer signs in; the app sets the invitee's
--   own right after (`update_user`), and a forgotten one is reset by emailed code as usual.
-- Left: an access token issued to a session that signed out before the acceptance stays valid until it expires
-- (at most the JWT expiry, 1 h); the app also deletes an invitation whose code request failed, so an invitation
-- without an account lasts only between the two requests.
-- Both happen in a trigger on the acceptance itself (`accepted_at` set, which only `accept_invitation()` does), so
-- the function stays as migration 20261129000710 wrote it. The trigger function is security definer with a fixed
-- search_path, reads `auth.sessions` and writes `auth.users` as its owner (`postgres` has ALL on auth's tables, on
-- Supabase too), and no role may execute it directly (as `private.bind_invitation`).

create or replace function private.invitation_takeover() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if exists (select 1 from auth.sessions s
             where s.user_id = new.accepted_by and s.id::text is distinct from auth.jwt() ->> 'session_id') then
    raise exception 'this account is signed in somewhere else; ask an admin to have the account removed and the address invited again'
      using errcode = '42501';
  end if;
  update auth.users set encrypted_password = '' where id = new.accepted_by;  -- no earlier password signs in
  return new;
end $$;

revoke execute on function private.invitation_takeover() from public, anon, authenticated, service_role;

create trigger invitations_takeover
  before update of accepted_at on public.invitations for each row
  when (old.accepted_at is null and new.accepted_at is not null)
  execute function private.invitation_takeover();
