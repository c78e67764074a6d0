"""The notifications outbox on the server (public.notifications), spoken in the worker's verbs.

All SQL of the worker lives here. The connection is autocommit: every verb is one statement, so a
worker that dies holds no transaction and no row lock. A worker proves it is alive by holding a
session advisory lock (LOCKSPACE, its token) for its whole life; PostgreSQL drops the lock the moment
the worker's connection goes, whatever killed it. `recover` gives rows of a dead worker (or of one
whose lease ran out) back: `claimed` rows to the queue (their mail never reached the final "."), and
`delivering` rows to `sent` (their "." may have been delivered: at most once; see notify/README.md).

Groups: a mail covers every queued notification of one (recipient, ticket). A group is claimed when
its oldest notification is due (the recipient's delay ran out, or at once for 'always'), together with
the group's younger rows, so quick replies make one mail. Two workers never split a group: the claim
takes a transaction-level advisory lock per group and skips rows (and groups) another worker holds.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row

from notify.decisions import Item, Preference
from notify.mail import Context

LOCKSPACE = 0x5C0DE  # first key of the worker's advisory locks (liveness and group claims)

_CLAIM = """
with due as (
  -- oldest first along notifications_due_idx (queued rows are never held: claimed_by is null says so and
  -- lets only this walk use that index), stopping early: a claim costs the same with 10 or 100,000 rows
  -- waiting. The recipient's delay is a subquery per row, not a join: a join let the planner hash the
  -- queue (all of it) when the statistics said it was empty
  select c.recipient_id, c.ticket_id from (
    select n.recipient_id, n.ticket_id, n.created_at
    from public.notifications n
    where n.state = 'queued' and n.claimed_by is null and n.not_before <= now()
      and n.created_at + coalesce(
            (select case when p.email = 'always' then interval '0'
                         else make_interval(secs => coalesce(p.unread_after_minutes * 60, %(delay)s)) end
             from public.notification_preferences p where p.user_id = n.recipient_id),
            make_interval(secs => %(delay)s)) <= now()
    order by n.created_at
    limit %(groups)s * 4
  ) c
  group by c.recipient_id, c.ticket_id
  order by min(c.created_at)
  limit %(groups)s
)
update public.notifications n
set state = 'claimed', claimed_by = %(token)s, lease_until = now() + make_interval(secs => %(lease)s)
where n.id in (
  -- per due group, its queued rows along notifications_group_idx (a lateral join: driven by the groups,
  -- whatever the statistics say about how many rows are queued)
  select g.id from due cross join lateral (
    select q.id from public.notifications q
    where q.recipient_id = due.recipient_id and q.ticket_id = due.ticket_id
      and q.state = 'queued' and q.not_before <= now()
      and pg_try_advisory_xact_lock(%(space)s, hashtext(q.recipient_id::text || q.ticket_id::text))
    for update of q skip locked) g)
returning n.id
"""

# for the claim's transaction: a burst can come right after the table was analyzed with nothing queued, and
# then a scan of the whole queue (and a sort of it) looks as cheap as the walk that stops early
_INDEXES_ONLY = (
    "select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('enable_hashjoin', 'off', true)"
)

_LOAD = """
select n.id, n.recipient_id::text, n.ticket_id::text, n.message_id::text, n.reason, n.attempts,
       m.content, m.created_at, m.deleted_at is not null as deleted, sp.display_name as sender_name,
       t.subject, u.email, rp.display_name as recipient_name, rp.role in ('agent', 'admin') as staff,
       coalesce(p.email, 'unread') as preference, r.last_read_at,
       -- who may read the message NOW, by the tickets' and messages' select policies: a recipient demoted, or an
       -- agent whose ticket went to someone else, since the notification was queued gets no mail of it
       (t.customer_id = n.recipient_id and not m.is_internal)
         or case rp.role when 'admin' then true
                         when 'agent' then t.assignee_id is null or t.assignee_id = n.recipient_id
                         else false end as visible
from public.notifications n
join public.messages m on m.id = n.message_id
join public.profiles sp on sp.id = m.sender_id
join public.tickets t on t.id = n.ticket_id
join public.profiles rp on rp.id = n.recipient_id
left join auth.users u on u.id = n.recipient_id
left join public.notification_preferences p on p.user_id = n.recipient_id
left join public.ticket_reads r on r.ticket_id = n.ticket_id and r.user_id = n.recipient_id
where n.id = any(%(ids)s) and n.claimed_by = %(token)s and n.state = 'claimed'
order by n.recipient_id, n.ticket_id, m.created_at
"""

_CONTEXT = """
select g.recipient_id::text, g.ticket_id::text, c.sender_name, c.content, c.created_at
from unnest(%(recipients)s::uuid[], %(tickets)s::uuid[], %(before)s::timestamptz[], %(staff)s::boolean[])
  as g(recipient_id, ticket_id, before, staff)
cross join lateral (
  select sp.display_name as sender_name, m.content, m.created_at
  from public.messages m join public.profiles sp on sp.id = m.sender_id
  where m.ticket_id = g.ticket_id and m.created_at < g.before and m.deleted_at is null
    and (g.staff or not m.is_internal)
  order by m.created_at desc limit 2
) c
order by c.created_at
"""

_RECOVER = """
update public.notifications n
set state = case when n.state = 'claimed' then 'queued' else 'sent' end,
    note = case when n.state = 'delivering'
                then 'worker stopped while handing the mail to SMTP; counted as sent (at most once)' else n.note end,
    done_at = case when n.state = 'delivering' then now() else n.done_at end,
    claimed_by = null, lease_until = null
where n.state in ('claimed', 'delivering') and n.claimed_by is distinct from %(token)s
  and (n.lease_until < now()
       or not exists (select 1 from pg_catalog.pg_locks l
                      where l.locktype = 'advisory' and l.granted and l.classid = %(space)s
                        and l.objid = n.claimed_by::oid and l.objsubid = 2))
"""


@dataclass(frozen=True)
class Outgoing:
    """One composed mail and the notifications it carries."""

    ids: list[int]
    attempts: int  # tries so far (the most of its rows)
    mail_id: str
    recipient: str
    body: bytes


@dataclass
class Group:
    """The claimed notifications of one recipient on one ticket, with what a mail needs."""

    recipient_id: str
    ticket_id: str
    email: str | None
    recipient_name: str
    staff: bool
    subject: str
    preference: Preference
    last_read_at: datetime | None
    attempts: int
    items: list[Item] = field(default_factory=list)
    context: list[Context] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [i.notification_id for i in self.items]


class Queue:
    """The worker's connection to the outbox; one per worker process (and its `sibling` for claiming ahead)."""

    def __init__(self, db_url: str, token: int | None = None) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True, application_name="supportchat notify")
        if token is None:
            self.token = random.randint(1, 2**31 - 1)
            self.conn.execute("select pg_advisory_lock(%s, %s)", (LOCKSPACE, self.token))
        else:
            self.token = token  # a sibling: the first connection's lock is the liveness of both
        self.db_url = db_url

    def sibling(self) -> Queue:
        """A second connection claiming under the same token, for a thread that claims the next batch while
        this one sends. Its claims are this worker's: they live and die with the first connection's lock."""
        return Queue(self.db_url, self.token)

    def release(self, ids: list[int]) -> None:
        """Hand claimed rows back to the queue untouched (claimed ahead, then the worker stopped)."""
        if ids:
            self.conn.execute(
                "update public.notifications set state = 'queued', claimed_by = null, lease_until = null"
                " where id = any(%s) and state = 'claimed' and claimed_by = %s",
                (ids, self.token),
            )

    def close(self) -> None:
        self.conn.close()

    def wake_snoozed(self) -> int:
        """Snoozed tickets whose time came go back to open (public.wake_snoozed_tickets); how many."""
        row = self.conn.execute("select public.wake_snoozed_tickets()").fetchone()
        return int(row[0]) if row else 0

    def recover(self) -> int:
        """Give back what dead (or expired) workers held; the number of rows changed."""
        return self.conn.execute(_RECOVER, {"token": self.token, "space": LOCKSPACE}).rowcount

    def claim(self, *, delay: float, groups: int, lease: float) -> list[Group]:
        """Claim due groups (at most `groups`) and load them; an empty list means nothing is due."""
        params = {"delay": delay, "groups": groups, "token": self.token, "lease": lease, "space": LOCKSPACE}
        with self.conn.transaction():
            # index scans only, whatever the statistics say (see _CLAIM and migration 20261202000110)
            self.conn.execute(_INDEXES_ONLY)
            ids = [r[0] for r in self.conn.execute(_CLAIM, params).fetchall()]
        if not ids:
            return []
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(_LOAD, {"ids": ids, "token": self.token}).fetchall()
        gone = set(ids) - {r["id"] for r in rows}
        if gone:  # the recipient's profile went between the enqueue and now
            self.finish(sorted(gone), "skipped", "recipient or message no longer exists")
        unseen = [r["id"] for r in rows if not r["visible"]]
        if unseen:
            self.finish(unseen, "skipped", "recipient can no longer see the message")
            rows = [r for r in rows if r["visible"]]
        found: dict[tuple[str, str], Group] = {}
        for r in rows:
            key = (r["recipient_id"], r["ticket_id"])
            g = found.get(key)
            if g is None:
                g = found[key] = Group(
                    r["recipient_id"],
                    r["ticket_id"],
                    r["email"],
                    r["recipient_name"],
                    r["staff"],
                    r["subject"],
                    cast(Preference, r["preference"]),
                    r["last_read_at"],
                    0,
                )
            g.attempts = max(g.attempts, r["attempts"])
            g.items.append(
                Item(
                    r["id"], r["message_id"], r["reason"], r["content"], r["created_at"], r["deleted"], r["sender_name"]
                )
            )
        self._load_context(list(found.values()))
        return list(found.values())

    def _load_context(self, groups: list[Group]) -> None:
        if not groups:
            return
        params: dict[str, list[Any]] = {"recipients": [], "tickets": [], "before": [], "staff": []}
        for g in groups:
            params["recipients"].append(g.recipient_id)
            params["tickets"].append(g.ticket_id)
            params["before"].append(min(i.created_at for i in g.items))
            params["staff"].append(g.staff)
        by_key: dict[tuple[str, str], list[Context]] = defaultdict(list)
        for rec, ticket, name, content, created in self.conn.execute(_CONTEXT, params).fetchall():
            by_key[(rec, ticket)].append(Context(name, content, created))
        for g in groups:
            g.context = by_key.get((g.recipient_id, g.ticket_id), [])

    def delivering(self, mails: list[Outgoing]) -> set[str]:
        """Mark every row of these mails `delivering` in one statement; returns the mail ids whose rows this
        worker still held, all of them (a mail that lost any row to recovery is handed back and not sent)."""
        if not mails:
            return set()
        ids = [i for m in mails for i in m.ids]
        mail_ids = [m.mail_id for m in mails for _ in m.ids]
        marked = {
            r[0]
            for r in self.conn.execute(
                "update public.notifications n set state = 'delivering', mail_id = b.mail_id, attempts = n.attempts + 1"
                " from unnest(%s::bigint[], %s::uuid[]) as b(id, mail_id)"
                " where n.id = b.id and n.state = 'claimed' and n.claimed_by = %s returning n.id",
                (ids, mail_ids, self.token),
            ).fetchall()
        }
        held = {m.mail_id for m in mails if all(i in marked for i in m.ids)}
        partial = [i for m in mails if m.mail_id not in held for i in m.ids if i in marked]
        if partial:
            self.conn.execute(
                "update public.notifications set state = 'claimed', mail_id = null,"
                " attempts = attempts - 1 where id = any(%s) and claimed_by = %s",
                (partial, self.token),
            )
        return held

    def sent(self, ids: list[int]) -> None:
        if ids:
            self.conn.execute(
                "update public.notifications set state = 'sent', done_at = now(), claimed_by = null,"
                " lease_until = null where id = any(%s) and state = 'delivering' and claimed_by = %s",
                (ids, self.token),
            )

    def finish(self, ids: list[int], state: str, note: str) -> None:
        """Close rows this worker holds as skipped or failed, with the reason."""
        self.conn.execute(
            "update public.notifications set state = %s, note = %s, done_at = now(), claimed_by = null,"
            " lease_until = null where id = any(%s) and claimed_by = %s",
            (state, note, ids, self.token),
        )

    def retry(self, ids: list[int], after: float, note: str, *, counted: bool) -> None:
        """Back to the queue, due again in `after` seconds (`counted`: the attempt was already counted)."""
        self.conn.execute(
            "update public.notifications set state = 'queued', note = %s, claimed_by = null,"
            " lease_until = null, mail_id = null, attempts = attempts + %s,"
            " not_before = now() + make_interval(secs => %s)"
            " where id = any(%s) and claimed_by = %s",
            (note, 0 if counted else 1, after, ids, self.token),
        )
