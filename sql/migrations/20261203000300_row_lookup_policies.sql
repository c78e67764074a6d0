-- Cheaper row-level security for one row at a time (issue 15 item 3): the same rules, asked per row.
--
-- Why: a policy written `ticket_id in (select t.id from public.tickets t)` can only be planned as a hashed set of
-- every ticket the caller sees (PostgreSQL does not pull a sublink of a policy up into a join), built before the
-- first row is tested. That is right for a page of thousands of rows, and wasteful for one: every realtime check
-- (`postgres_changes` asks "may this subscriber see this new row?" once per subscriber and change), every REST
-- insert's WITH CHECK and every single-message read built the whole set (measured with the realtime checker's own
-- statement on a desk of 2,000 tickets: ~400 µs per subscriber identity, 1.3-1.8 ms at 5,000 visible tickets).
-- Written as `exists (select 1 from public.tickets t where t.id = messages.ticket_id)`, PostgreSQL plans both ways
-- (an index lookup per row, or the same hashed set, the EXISTS turned into the IN above) and picks by the number of
-- rows it expects: one key lookup for a check of a few rows, the hashed set for a bulk read such as `sync_batch`.
-- The tickets' own policies (tickets_select, staff_mfa) still apply inside the subquery, as before.
--
-- Same semantics, exactly: `x in (select t.id ...)` and `exists (... where t.id = x)` agree for every row: both are
-- true when a visible row has that key, and both reject the row otherwise (a null `x` gives null for IN and false for
-- EXISTS; a policy treats both as "no"). The keys are primary keys (never null, unique).
--
-- tickets_select asked the caller's role twice (`private.is_admin()` and `private.user_role(auth.uid())`, two
-- security definer calls, ~12 µs each, in every statement that touches tickets, messages' checks included); it now
-- asks `private.user_role` once: is_admin() is exactly `coalesce(user_role(auth.uid()) = 'admin', false)` (the same
-- profile row, the same statement snapshot), so `case role when 'admin' then true when 'agent' then ... else false`
-- lets through the same rows.
--
-- Only the expressions change (ALTER POLICY keeps each policy's name, command, roles and permissive/restrictive
-- kind); nothing is created, so nothing needs a grant. The indexes these lookups use are the primary keys.

alter policy tickets_select on public.tickets
  using (customer_id = (select auth.uid())
         or case (select private.user_role(auth.uid()))
              when 'admin' then true
              when 'agent' then assignee_id = (select auth.uid()) or assignee_id is null
              else false
            end);

alter policy messages_select on public.messages
  using (exists (select 1 from public.tickets t where t.id = messages.ticket_id)
         and (not is_internal or (select private.is_staff())));
alter policy messages_insert on public.messages
  with check (
    sender_id = (select auth.uid())
    and exists (select 1 from public.tickets t where t.id = messages.ticket_id)
    and ((select private.is_staff()) or (not is_internal and not private.ticket_is_closed(ticket_id)))
  );
alter policy messages_update_own on public.messages
  using (sender_id = (select auth.uid()) and exists (select 1 from public.tickets t where t.id = messages.ticket_id))
  with check (sender_id = (select auth.uid())
              and exists (select 1 from public.tickets t where t.id = messages.ticket_id));

alter policy ticket_reads_select on public.ticket_reads
  using (exists (select 1 from public.tickets t where t.id = ticket_reads.ticket_id)
         and (user_id = (select auth.uid()) or (select private.is_staff())
              or (select private.customers_see_read_receipts())));
alter policy ticket_reads_insert on public.ticket_reads
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.tickets t where t.id = ticket_reads.ticket_id));
alter policy ticket_reads_update on public.ticket_reads
  with check (user_id = (select auth.uid())
              and exists (select 1 from public.tickets t where t.id = ticket_reads.ticket_id));

alter policy attachments_select on public.attachments
  using (exists (select 1 from public.messages m where m.id = attachments.message_id));

alter policy message_revisions_select on public.message_revisions
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = message_revisions.ticket_id));

alter policy ticket_tags_select on public.ticket_tags
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = ticket_tags.ticket_id));
alter policy ticket_tags_insert on public.ticket_tags
  with check ((select private.is_staff())
              and exists (select 1 from public.tickets t where t.id = ticket_tags.ticket_id)
              and private.tag_is_live(tag_id));
alter policy ticket_tags_update on public.ticket_tags
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = ticket_tags.ticket_id))
  with check ((select private.is_staff())
              and exists (select 1 from public.tickets t where t.id = ticket_tags.ticket_id)
              and (removed_at is not null or private.tag_is_live(tag_id)));

alter policy ticket_sla_select on public.ticket_sla
  using ((select private.is_staff())
         and exists (select 1 from public.tickets t where t.id = ticket_sla.ticket_id));

alter policy canned_reply_files_select on public.canned_reply_files
  using (exists (select 1 from public.canned_replies c where c.id = canned_reply_files.canned_reply_id));
