-- Two-step sign-in for staff as a project setting (issue 17), off by default.
--
-- public.app_settings.staff_require_mfa   when true, an agent or admin whose session did not pass
--   two-step sign-in (Supabase Auth MFA: the JWT's `aal` claim is not 'aal2') reads and writes nothing
--   of the support desk: RESTRICTIVE policies (Supabase's documented "enforce MFA" pattern) on every
--   table staff work with, on the attachment objects and on the private realtime channels, and a trigger
--   on tickets for the writes that run as security definer (`take_ticket`). Customers are not affected.
--   Left readable on purpose: the caller's own profile (the app needs the role to sign in) and
--   app_settings itself (the app reads the switch to say why the inbox is empty; an admin, even at
--   aal1, can switch it off again). Admins change it like the other settings:
--   `update public.app_settings set staff_require_mfa = true` (RLS: admins only).
--   Not covered: `ticket_signal` (security definer) still lets such a session broadcast its own
--   "viewing"/"typing" on tickets it could see; it reads nothing with it.

alter table public.app_settings add column staff_require_mfa boolean not null default false;

-- true unless the project requires two-step sign-in and the caller is staff below aal2
create or replace function private.mfa_satisfied() returns boolean
language sql stable security definer set search_path = '' as $$
  select not coalesce((select s.staff_require_mfa from public.app_settings s), false)
      or coalesce(auth.jwt() ->> 'aal', 'aal1') = 'aal2'
      or not private.is_staff()
$$;

create or replace function private.tickets_require_mfa() returns trigger
language plpgsql set search_path = '' as $$
begin
  if not private.mfa_satisfied() then
    raise exception using errcode = '42501',
      message = 'this project requires two-step sign-in for staff: sign in with your authenticator code';
  end if;
  return new;
end $$;

create trigger tickets_require_mfa before insert or update on public.tickets
  for each row execute function private.tickets_require_mfa();

create policy staff_mfa on public.tickets as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.messages as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.ticket_reads as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.attachments as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.message_revisions as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.notification_preferences as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.canned_replies as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.macros as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.tags as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.ticket_tags as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.saved_views as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.customer_notes as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.mentions as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.sla_settings as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.sla_targets as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.sla_business_hours as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.sla_holidays as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.ticket_sla as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa on public.invitations as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));
create policy staff_mfa_attachments on storage.objects as restrictive for all to authenticated
  using (bucket_id <> 'attachments' or (select private.mfa_satisfied()))
  with check (bucket_id <> 'attachments' or (select private.mfa_satisfied()));
create policy staff_mfa on realtime.messages as restrictive for all to authenticated
  using ((select private.mfa_satisfied())) with check ((select private.mfa_satisfied()));

-- grants: the new column as the other settings (admins update it, RLS decides); the functions for policies only
grant update (staff_require_mfa) on public.app_settings to authenticated;
revoke all on function private.mfa_satisfied(), private.tickets_require_mfa() from public, anon;
grant execute on function private.mfa_satisfied() to authenticated, service_role;
