-- The worker's claim (notify/queue.py) walks the queued notifications oldest first, stops early, and then
-- takes every queued row of the groups it found; it must do so whatever PostgreSQL's statistics say. Right
-- after a burst (10,000 replies queued at once into a table last analyzed when nothing was queued) the
-- statistics say "no row is queued", so every index limited to queued rows looks equally free, and the
-- planner found each group's rows through notifications_queued_idx or notifications_waiting_idx (both on
-- created_at): a scan of every queued row per group, 0.4-1.4 s a claim of 100 groups on 10,000 queued rows
-- until autovacuum's next analyze (EXPLAIN ANALYZE on a fresh burst; 4 ms with these indexes).
--
-- So each index now serves exactly one query, and no other query's conditions imply its predicate:
--   notifications_due_idx    the oldest-first walk: queued and held by nobody (every queued row is; only the
--                            walk says `claimed_by is null`, so only the walk can use it)
--   notifications_group_idx  (from 20261129000520) a group's queued rows: now the only index limited to
--                            queued rows that the per-group lookup can use
--   notifications_held_idx   the rows recovery looks at (claimed or delivering), no longer queued ones
-- Indexes need no grants.

create index notifications_due_idx on public.notifications (created_at)
  where state = 'queued' and claimed_by is null;
create index notifications_held_idx on public.notifications (created_at)
  where state in ('claimed', 'delivering');

drop index public.notifications_queued_idx;
drop index public.notifications_waiting_idx;
