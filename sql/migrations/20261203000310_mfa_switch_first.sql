-- The staff two-step sign-in switch asked before the function (issue 15 item 3): same rule, one call fewer.
--
-- Why: every statement on a table with the restrictive `staff_mfa` policy (20261130000600) called
-- `private.mfa_satisfied()`, a security definer SQL function (~8-10 µs a call: the call itself, not its query), and a
-- realtime check of a message calls it twice (messages' policy, and tickets' inside messages_select's ticket lookup),
-- once per subscriber identity and change. While the project does not require two-step sign-in (the default) the
-- answer is always true, so the policies now read the switch first and call the function only when it is on:
--
--   coalesce((select not s.staff_require_mfa from public.app_settings s), false) or (select private.mfa_satisfied())
--
-- Same semantics, exactly: app_settings has one row at most (`id boolean primary key check (id)`), which every
-- signed-in user may read (app_settings_select `using (true)`, table SELECT granted to authenticated), so the first
-- term is true exactly when that row says "not required", and then mfa_satisfied() is true as well (its first term).
-- When the switch is on, or if the caller could not see the row (null -> false), the function decides as before;
-- if the caller could not read the table at all the statement fails (closed), never opens. Both terms are
-- init-plans, evaluated once per statement; the function's is never run while the first is true.
--
-- Only the expressions change (ALTER POLICY keeps names, commands, roles and the restrictive kind); nothing is
-- created, so nothing needs a grant. storage.objects' and realtime.messages' policies are left as they are.

alter policy staff_mfa on public.tickets
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.messages
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.ticket_reads
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.attachments
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.message_revisions
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.notification_preferences
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.canned_replies
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.macros
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.tags
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.ticket_tags
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.saved_views
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.customer_notes
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.mentions
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.sla_settings
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.sla_targets
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.sla_business_hours
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.sla_holidays
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.ticket_sla
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
alter policy staff_mfa on public.invitations
  using (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
         or (select private.mfa_satisfied()))
  with check (coalesce((select not s.staff_require_mfa from public.app_settings s), false)
              or (select private.mfa_satisfied()));
