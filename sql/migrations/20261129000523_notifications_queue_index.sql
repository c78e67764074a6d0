-- The worker claims the oldest due notifications first and stops early; this index is the order it
-- walks (only queued rows, so it stays small however many were sent).
create index notifications_queued_idx on public.notifications (created_at) where state = 'queued';
