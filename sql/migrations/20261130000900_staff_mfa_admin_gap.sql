-- Close the way around `app_settings.staff_require_mfa` (20261130000600) that a stolen admin password
-- still had: with the setting on, an admin session below aal2 saw no desk data, but could still
--   * switch the setting off again (`update public.app_settings set staff_require_mfa = false`), or
--   * make any account it controls an admin (`update public.profiles set role = 'admin'`): an account
--     without a factor enrols one at aal1, verifies it and is an aal2 admin,
-- and then read everything with the password alone. A staff session below aal2 also still read every
-- profile (all customers' names and pictures).
--
-- Now, while the project requires two-step sign-in of staff, a staff session below aal2:
--   * reads only its own profile (the app still learns its role and says why the inbox is empty), and
--     through the avatars policies (which read profiles as the caller) only its own picture;
--   * changes no profile (no role, no name, no picture) and no project setting. Turning the requirement
--     off therefore takes an aal2 admin session (or the service role / SQL, e.g. when every admin lost
--     their authenticator).
-- Customers are not affected: private.mfa_satisfied() is true for them.
--
-- Restrictive policies only (they narrow what the existing permissive ones allow); nothing new to grant.

create policy staff_mfa_select on public.profiles as restrictive for select to authenticated
  using (id = (select auth.uid()) or (select private.mfa_satisfied()));
create policy staff_mfa_update on public.profiles as restrictive for update to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa_update on public.app_settings as restrictive for update to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
