-- review17: accepting an invitation from a session below aal2 also removes the account's second factors.
--
-- Why: sign-ups are confirmed at once on localbase (and wherever a project turns confirmations off), so an outsider
-- who knows an invited address can sign it up first: the invitation binds that account (20261129000710), and the
-- outsider can sign in and enrol a TOTP factor on it. The invitee signs in with the emailed code, which opens the
-- same account at aal1, and accepts; 20261211000510 then ends the outsider's sessions and clears their password, but
-- their factor stayed. The invitee could not reach aal2 (the code is the outsider's), nor enrol a factor of their
-- own or remove the planted one (Auth wants aal2 for both, as GoTrue does), and the app asks every sign-in of an
-- account with a factor for its code: the new agent or admin was locked out until another admin removed the factor.
--
-- How: `private.invitation_takeover()` (the trigger on the acceptance, body of 20261211000510) also deletes the
-- account's factors (their challenges go with them, `on delete cascade`) when the accepting token is not aal2:
-- nobody in that session proved them. An acceptance at aal2 keeps them: the invitee verified one of them in this
-- very session, so the account's two-step sign-in is theirs (a second factor the outsider planted as well can then
-- be removed by the invitee, aal2 being what Auth asks for). The invitee sets up their own factor afterwards.
-- `postgres` may delete from auth.mfa_factors on a project (supabase/postgres
-- migrations/db/migrations/10000000000000_demote-postgres.sql grants it ALL on auth's tables).
--
-- The function stays security definer with an empty search_path; no API role may execute it (restated).

create or replace function private.invitation_takeover() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from auth.sessions s
   where s.user_id = new.accepted_by and s.id::text is distinct from auth.jwt() ->> 'session_id';
  update auth.users set encrypted_password = '' where id = new.accepted_by;  -- no earlier password signs in
  if coalesce(auth.jwt() ->> 'aal', 'aal1') is distinct from 'aal2' then
    delete from auth.mfa_factors f where f.user_id = new.accepted_by;  -- nor a factor nobody here proved
  end if;
  return new;
end $$;

revoke execute on function private.invitation_takeover() from public, anon, authenticated, service_role;
