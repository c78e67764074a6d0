"""The local cache's schema, versioned with ``PRAGMA user_version``: ``MIGRATIONS[i]`` takes the
file from version i to i+1, each step in one transaction together with the version bump, so a
crash mid-migration leaves the previous version intact. Append steps; never edit a shipped one.

The DDL is plain SQL rather than sqlite-utils' ``create_table``/``enable_fts`` because those
commit on their own and a migration step must be atomic.
"""

from __future__ import annotations

V1 = """
create table meta (key text primary key, value text not null);
create table cursors (name text primary key, xid integer not null, id integer not null);

create table profiles (
  id text primary key, role text not null, display_name text not null default '', avatar_url text,
  updated_at text
);

create table tickets (
  id text primary key, customer_id text not null, assignee_id text, subject text not null,
  status text not null, priority text not null, created_at text not null, updated_at text not null,
  last_message_at text not null, first_response_at text, resolved_at text,
  local_state text not null default 'sent', error text
);
create index tickets_activity on tickets (last_message_at desc);
create index tickets_assignee on tickets (assignee_id, last_message_at desc);
create index tickets_status on tickets (status, last_message_at desc);
create index tickets_customer on tickets (customer_id, last_message_at desc);

create table messages (
  id text primary key, ticket_id text not null, sender_id text not null, content text not null,
  is_internal integer not null default 0, created_at text not null, edited_at text, deleted_at text,
  local_state text not null default 'sent', error text
);
create index messages_thread on messages (ticket_id, created_at desc, id desc);
create index messages_unsent on messages (local_state) where local_state <> 'sent';

create table ticket_reads (
  ticket_id text not null, user_id text not null, last_read_at text not null,
  primary key (ticket_id, user_id)
) without rowid;

-- the outbox: one row per local change waiting for the server, FIFO by seq; an entry leaves only
-- when the server acknowledged it; a refused one stays with state 'failed' and the reason
create table outbox (
  seq integer primary key autoincrement, kind text not null, entity_id text not null,
  ticket_id text not null, payload text not null, state text not null default 'queued',
  attempts integer not null default 0, error text, created_at text not null
);
create index outbox_state on outbox (state, seq);
create index outbox_entity on outbox (entity_id);

create table drafts (ticket_id text primary key, text text not null, updated_at text not null);

create virtual table messages_fts using fts5 (content, content='messages', content_rowid='rowid');
create trigger messages_fts_ai after insert on messages begin
  insert into messages_fts (rowid, content) values (new.rowid, new.content);
end;
create trigger messages_fts_ad after delete on messages begin
  insert into messages_fts (messages_fts, rowid, content) values ('delete', old.rowid, old.content);
end;
create trigger messages_fts_au after update of content on messages when old.content <> new.content begin
  insert into messages_fts (messages_fts, rowid, content) values ('delete', old.rowid, old.content);
  insert into messages_fts (rowid, content) values (new.rowid, new.content);
end;

create virtual table tickets_fts using fts5 (subject, content='tickets', content_rowid='rowid');
create trigger tickets_fts_ai after insert on tickets begin
  insert into tickets_fts (rowid, subject) values (new.rowid, new.subject);
end;
create trigger tickets_fts_ad after delete on tickets begin
  insert into tickets_fts (tickets_fts, rowid, subject) values ('delete', old.rowid, old.subject);
end;
create trigger tickets_fts_au after update of subject on tickets when old.subject <> new.subject begin
  insert into tickets_fts (tickets_fts, rowid, subject) values ('delete', old.rowid, old.subject);
  insert into tickets_fts (rowid, subject) values (new.rowid, new.subject);
end;
"""

# v2: messages enter the search index in bulk (one INSERT … SELECT per applied page, see
# writes.apply_messages) instead of a per-row trigger, which made pulls about twice as slow
V2 = """
drop trigger messages_fts_ai;
"""

# v3: the thread index also covers what unread counts and previews filter on (sender, internal,
# deleted), so the inbox counts from the index alone instead of visiting every message row
V3 = """
drop index messages_thread;
create index messages_thread on messages (ticket_id, created_at desc, id desc, sender_id, is_internal, deleted_at);
"""

# v4: attachments (issue 12): files of messages, queued for upload beside the outbox (the file is
# copied into the cache's files folder first; `local_path` points there) or pulled from the server
V4 = """
create table attachments (
  id text primary key,
  message_id text not null,
  ticket_id text not null,
  uploader_id text not null,
  name text not null,
  mime text not null,
  size integer not null,
  sha256 text not null,
  object_path text not null unique,
  created_at text not null,
  local_path text,
  local_state text not null default 'sent',
  error text
);
create index attachments_message on attachments (message_id);
"""

# v5: when a downloaded attachment file was last opened, for the size-bounded LRU of downloaded files
V5 = """
alter table attachments add column last_used real;
"""

# v6: the agent workspace (issue 14, server migrations 20261129000530/540): tags, canned replies, macros,
# saved views, customer notes, mentions and SLA due times, pulled by cursor like the rest; the SLA settings
# (no cursor, read whole); a ticket's snooze. Rows the user wrote carry local_state/error like messages.
V6 = """
alter table tickets add column snoozed_until text;

create table tags (
  id text primary key, name text not null, color text not null default '#64748b', created_at text, updated_at text,
  deleted_at text, local_state text not null default 'sent', error text
);
create table ticket_tags (
  ticket_id text not null, tag_id text not null, added_by text, added_at text, removed_at text,
  local_state text not null default 'sent', error text, primary key (ticket_id, tag_id)
) without rowid;
create index ticket_tags_tag on ticket_tags (tag_id, ticket_id) where removed_at is null;
create table canned_replies (
  id text primary key, owner_id text, title text not null, body text not null, shortcut text,
  created_at text, updated_at text, deleted_at text, local_state text not null default 'sent', error text
);
create table macros (
  id text primary key, owner_id text, name text not null, reply text, actions text not null default '{}',
  created_at text, updated_at text, deleted_at text, local_state text not null default 'sent', error text
);
create table saved_views (
  id text primary key, owner_id text, name text not null, filters text not null default '{}',
  sort text not null default 'last_message_desc', position integer not null default 0,
  created_at text, updated_at text, deleted_at text, local_state text not null default 'sent', error text
);
create table customer_notes (
  id text primary key, customer_id text not null, author_id text not null, body text not null,
  created_at text, updated_at text, deleted_at text, local_state text not null default 'sent', error text
);
create index customer_notes_customer on customer_notes (customer_id, created_at);
create table mentions (
  id text primary key, message_id text not null, ticket_id text not null, mentioned_id text not null,
  author_id text not null, created_at text not null, seen_at text,
  local_state text not null default 'sent', error text
);
create index mentions_recent on mentions (mentioned_id, created_at desc);
create table ticket_sla (
  ticket_id text primary key, first_response_due_at text, awaiting_reply_since text,
  next_response_due_at text, updated_at text
);
create table sla_settings (
  id integer primary key, timezone text not null, updated_at text,
  local_state text not null default 'sent', error text
);
create table sla_targets (
  priority text primary key, first_response_minutes integer, next_response_minutes integer, updated_at text,
  local_state text not null default 'sent', error text
);
create table sla_business_hours (id text primary key, weekday integer not null, opens text not null,
  closes text not null);
create table sla_holidays (day text primary key, name text not null default '');
"""

# v7: edits and deletes (issue 13): the revisions of edited messages, for staff (a customer's server never
# returns any), dropped with their message when its tombstone arrives
V7 = """
create table message_revisions (
  id text primary key,
  message_id text not null,
  ticket_id text not null,
  content text not null,
  edited_by text,
  replaced_at text not null
);
create index message_revisions_message on message_revisions (message_id, replaced_at);
create index message_revisions_ticket on message_revisions (ticket_id);
"""

# v8: admins edit business hours and holidays offline-first (issue 14): the rows get the local state of the
# other workspace tables, and a local tombstone for a removal not sent yet (the server DELETEs them)
V8 = """
alter table sla_business_hours add column deleted_at text;
alter table sla_business_hours add column local_state text not null default 'sent';
alter table sla_business_hours add column error text;
alter table sla_holidays add column deleted_at text;
alter table sla_holidays add column local_state text not null default 'sent';
alter table sla_holidays add column error text;
"""

# v9: what "unread" needs, on the ticket row (issue 15: at a million messages the sidebar's unread count
# probed the thread index once per ticket, 4.3 s for an admin's 100,000 tickets, and the first page timed
# out with HTTP 500). `others_last_at` is the newest live message by someone else, `my_read_at` this
# user's read marker (`meta.user_id`: a cache belongs to one user); a ticket is unread when the first is
# later than the second. Triggers keep both in step with every write of messages, reads and tickets.
V9 = """
alter table tickets add column others_last_at text;
alter table tickets add column my_read_at text;
update tickets set
  others_last_at = (select max(m.created_at) from messages m where m.ticket_id = tickets.id
                    and m.deleted_at is null
                    and m.sender_id <> coalesce((select value from meta where key = 'user_id'), '')),
  my_read_at = (select r.last_read_at from ticket_reads r where r.ticket_id = tickets.id
                and r.user_id = coalesce((select value from meta where key = 'user_id'), ''));

create trigger tickets_unread_ai after insert on tickets begin
  update tickets set
    others_last_at = (select max(m.created_at) from messages m where m.ticket_id = new.id
                      and m.deleted_at is null
                      and m.sender_id <> coalesce((select value from meta where key = 'user_id'), '')),
    my_read_at = (select r.last_read_at from ticket_reads r where r.ticket_id = new.id
                  and r.user_id = coalesce((select value from meta where key = 'user_id'), ''))
  where id = new.id;
end;
create trigger messages_unread_ai after insert on messages
when new.deleted_at is null and new.sender_id <> coalesce((select value from meta where key = 'user_id'), '')
begin
  update tickets set others_last_at = new.created_at
  where id = new.ticket_id and (others_last_at is null or others_last_at < new.created_at);
end;
create trigger messages_unread_au after update of ticket_id, sender_id, created_at, deleted_at on messages
when old.ticket_id is not new.ticket_id or old.sender_id is not new.sender_id
  or old.created_at is not new.created_at or old.deleted_at is not new.deleted_at
begin
  update tickets set others_last_at = (
    select max(m.created_at) from messages m where m.ticket_id = tickets.id and m.deleted_at is null
    and m.sender_id <> coalesce((select value from meta where key = 'user_id'), ''))
  where id in (old.ticket_id, new.ticket_id);
end;
create trigger messages_unread_ad after delete on messages begin
  update tickets set others_last_at = (
    select max(m.created_at) from messages m where m.ticket_id = tickets.id and m.deleted_at is null
    and m.sender_id <> coalesce((select value from meta where key = 'user_id'), ''))
  where id = old.ticket_id;
end;
create trigger ticket_reads_unread_ai after insert on ticket_reads
when new.user_id = coalesce((select value from meta where key = 'user_id'), '')
begin
  update tickets set my_read_at = new.last_read_at where id = new.ticket_id;
end;
create trigger ticket_reads_unread_au after update on ticket_reads
when new.user_id = coalesce((select value from meta where key = 'user_id'), '')
begin
  update tickets set my_read_at = new.last_read_at where id = new.ticket_id;
end;
create trigger ticket_reads_unread_ad after delete on ticket_reads
when old.user_id = coalesce((select value from meta where key = 'user_id'), '')
begin
  update tickets set my_read_at = null where id = old.ticket_id;
end;
"""

# v10: when a profile was created (the server's clock), for the context panel's "first seen" (issue 14); the
# profiles cursor starts over so the next pull brings it for the profiles cached before
V10 = """
alter table profiles add column created_at text;
delete from cursors where name = 'profiles';
"""

# v11: the files canned replies carry (issue 14), pulled by cursor for staff; the bytes are kept beside the
# cache (``<cache>.canned/``) so a picked reply attaches them offline too
V11 = """
create table canned_reply_files (
  id text primary key, canned_reply_id text not null, name text not null, mime text not null default '',
  size integer not null default 0, sha256 text not null, object_path text not null, created_at text,
  deleted_at text
);
create index canned_reply_files_reply on canned_reply_files (canned_reply_id, created_at);
"""

# v12: a smaller cache (issue 15; at 1M messages the file was 6 x the text, by dbstat: the covering thread index
# 193 MB, the search index 61 MB of positions plus 10 MB of sizes). The thread index goes back to what thread
# pages and previews walk (unread counts no longer probe it: v9), and the search index keeps which messages
# hold a word, not where (`detail=none`, no column sizes): search ANDs the user's words and orders by rowid,
# so positions (phrases, NEAR) and sizes (bm25) were never used; snippets re-read the text. Built in one pass.
# And the initial sync's speed: while a page of the initial sync is applied (`meta.bulk_apply` is set inside
# its transaction only), inserted tickets and messages leave the subject index and the unread columns to
# `Cache.finish_initial_sync` (a rebuild and one grouped pass instead of work per row: the tickets' triggers
# were 80 % of applying them), and a new ticket row looks for its messages and markers only when there are any.
V12 = """
drop index messages_thread;
create index messages_thread on messages (ticket_id, created_at desc, id desc);

drop trigger messages_fts_ad;
drop trigger messages_fts_au;
drop table messages_fts;
create virtual table messages_fts using fts5 (
  content, content='messages', content_rowid='rowid', detail='none', columnsize=0
);
create trigger messages_fts_ad after delete on messages begin
  insert into messages_fts (messages_fts, rowid, content) values ('delete', old.rowid, old.content);
end;
create trigger messages_fts_au after update of content on messages when old.content <> new.content begin
  insert into messages_fts (messages_fts, rowid, content) values ('delete', old.rowid, old.content);
  insert into messages_fts (rowid, content) values (new.rowid, new.content);
end;
insert into messages_fts (messages_fts) values ('rebuild');

drop trigger messages_unread_ai;
create trigger messages_unread_ai after insert on messages
when new.deleted_at is null and new.sender_id <> coalesce((select value from meta where key = 'user_id'), '')
  and not exists (select 1 from meta where key = 'bulk_apply')
begin
  update tickets set others_last_at = new.created_at
  where id = new.ticket_id and (others_last_at is null or others_last_at < new.created_at);
end;
drop trigger tickets_unread_ai;
create trigger tickets_unread_ai after insert on tickets
when not exists (select 1 from meta where key = 'bulk_apply')
  and (exists (select 1 from messages m where m.ticket_id = new.id)
       or exists (select 1 from ticket_reads r where r.ticket_id = new.id))
begin
  update tickets set
    others_last_at = (select max(m.created_at) from messages m where m.ticket_id = new.id
                      and m.deleted_at is null
                      and m.sender_id <> coalesce((select value from meta where key = 'user_id'), '')),
    my_read_at = (select r.last_read_at from ticket_reads r where r.ticket_id = new.id
                  and r.user_id = coalesce((select value from meta where key = 'user_id'), ''))
  where id = new.id;
end;
drop trigger tickets_fts_ai;
create trigger tickets_fts_ai after insert on tickets when not exists (select 1 from meta where key = 'bulk_apply')
begin
  insert into tickets_fts (rowid, subject) values (new.rowid, new.subject);
end;
"""

# v13: the unsaved text of inline edits (sync/cache/edit_drafts.py), restored when the thread reopens
V13 = """
create table edit_drafts (
  message_id text primary key, ticket_id text not null, text text not null, updated_at text not null
);
create index edit_drafts_ticket on edit_drafts (ticket_id);
"""

# v14: deletes of this user's previous avatar pictures, retried until Storage confirms (sync/cache/avatar_deletes.py)
V14 = """
create table avatar_deletes (key text primary key, queued_at text not null);
"""

# v15: a canned reply's file can be added offline (sync/canned_files.py): its row is the user's until the outbox
# sent it, like the other workspace rows
V15 = """
alter table canned_reply_files add column local_state text not null default 'sent';
alter table canned_reply_files add column error text;
"""

# v16: the server's change stamp of each cached message (its writing transaction, ``change_xid``), so a copy of a
# row older than the one cached never lands over it: a pull page read before a realtime change or a push and
# applied after it put the older text back (a saved edit showed the previous text, a deleted message's text
# came back) until the cursor reached the newer version. Null: not known (a local row, an older cache's row).
V16 = """
alter table messages add column change_xid integer;
"""

# v17: the server rows this cache could not take and set aside (``Cache.set_aside``), kept across restarts so the
# status line still says a row was skipped; a row leaves when the server sends it again and it applies
V17 = """
create table set_aside (
  seq integer primary key autoincrement, table_name text not null, row_id text not null, reason text not null,
  at text not null, unique (table_name, row_id)
);
"""

# v18: attachments' ``created_at`` as every other timestamp of the cache (``canonical_ts``: one fixed width in UTC,
# 'infinity' and the like clamped to the cache's last or first instant); it was stored as the server sent it, so a
# realtime row's text form ("2026-11-30 12:00:00.5+00"), a pull's trimmed fraction and 'infinity' sorted against each
# other by their text, not their instant. ``canonical_ts`` here is the SQL function ``files._migrate`` registers (a
# value that is no timestamp at all is kept as it was).
V18 = """
update attachments set created_at = canonical_ts(created_at) where canonical_ts(created_at) is not created_at;
"""

# v19: the ticket a row set aside belongs to, so that dropping the ticket (no longer visible: ``Cache.prune``) drops
# its notes too; before, a row set aside in a ticket later reassigned away could never come again to clear its note,
# and the status line said "a row was skipped" for good, across restarts. Null: not known (an older note, a row of
# no ticket)
V19 = """
alter table set_aside add column ticket_id text;
create index set_aside_ticket on set_aside (ticket_id) where ticket_id is not null;
"""

# v20: a ticket's snooze is no field of the server's ticket any more (migration 20261216000100: the staff-only
# ``ticket_snoozes``); a snooze an older version queued inside a ticket change (``wanted.snoozed_until``) becomes a
# ``snooze`` entry after it (sync/cache/snoozes.py), and the ticket change keeps its other fields (none left: it goes)
V20 = """
insert into outbox (kind, entity_id, ticket_id, payload, state, error, created_at)
select 'snooze', entity_id, ticket_id,
       json_object('ticket_id', entity_id, 'snoozed_until', json_extract(payload, '$.wanted.snoozed_until')),
       state, error, created_at
from outbox where kind = 'ticket_update' and json_type(payload, '$.wanted.snoozed_until') is not null order by seq;
update outbox set payload = json_remove(payload, '$.wanted.snoozed_until', '$.base.snoozed_until')
where kind = 'ticket_update' and json_type(payload, '$.wanted.snoozed_until') is not null;
update outbox set payload = json_remove(payload, '$.snoozed_until')
where kind = 'ticket_create' and json_type(payload, '$.snoozed_until') is not null;
delete from outbox where kind = 'ticket_update' and json_extract(payload, '$.wanted') = '{}';
"""

MIGRATIONS: tuple[str, ...] = (
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16, V17, V18, V19, V20
)  # fmt: skip
VERSION = len(MIGRATIONS)
