-- The SLA inputs' statement is planned once per session, not once per new message (issue 15, item 3).
--
-- private.sla_inputs runs inside every message insert (messages_sla -> recompute_sla). Its statement executes in
-- ~0.03 ms, but PostgreSQL planned it again on every call: its parameter (the ticket ids) makes the plan cache
-- keep choosing a custom plan, and planning the two lateral lookups cost ~0.5 ms of the backend's CPU per message
-- (measured on a 2-core machine under load: the function 0.70 -> 0.19 ms of CPU per call). Its plan does not
-- depend on the ids: tickets by primary key, then per ticket the two index walks of 20261205000200. So it runs
-- with `plan_cache_mode = force_generic_plan` (for its own statement only), planned once and reused; for a
-- settings change over thousands of tickets the same plan looks each one up by id.

alter function private.sla_inputs(uuid[]) set plan_cache_mode = force_generic_plan;
