"""supabase-js (Node) against /rest/v1 unchanged: select/filter/order, count, single, maybeSingle, insert
(minimal and with .select()), upsert, update, delete, rpc and an RLS refusal, with a user's token."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Users
from tests.stackproc import StackProcess

JS_DIR = Path(__file__).parent / "js"

SCRIPT = r"""
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
const [url, anon, token, otherUser] = process.argv.slice(2);
const sb = createClient(url, anon, {
  global: { headers: { Authorization: `Bearer ${token}` } },
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const out = {};
const t = await sb.from('tickets').insert({ subject: 'from js' }).select().single();
out.ticket = { error: t.error, subject: t.data?.subject };
const tid = t.data.id;
const quiet = await sb.from('messages').insert({ ticket_id: tid, content: 'minimal' });
out.minimal = { status: quiet.status, data: quiet.data, error: quiet.error };
const bulk = await sb.from('messages').insert([{ ticket_id: tid, content: 'a' }, { ticket_id: tid, content: 'b' }])
  .select('id,content');
out.bulk = bulk.data.map((r) => r.content);
const page = await sb.from('messages').select('content', { count: 'exact' }).eq('ticket_id', tid)
  .in('content', ['a', 'b', 'minimal']).order('content', { ascending: false }).range(0, 1);
out.page = { data: page.data, count: page.count, status: page.status };
const head = await sb.from('messages').select('*', { count: 'exact', head: true }).eq('ticket_id', tid);
out.head = { count: head.count, data: head.data, status: head.status };
const none = await sb.from('messages').select('id').eq('content', 'no such').maybeSingle();
out.maybe = { data: none.data, error: none.error };
const many = await sb.from('messages').select('id').eq('ticket_id', tid).single();
out.single = { code: many.error?.code, status: many.status };
const up = await sb.from('ticket_reads').upsert({ ticket_id: tid, last_read_at: new Date().toISOString() })
  .select('ticket_id');
out.upsert = { error: up.error, rows: up.data?.length };
const upd = await sb.from('tickets').update({ status: 'resolved' }).eq('id', tid).select('status');
out.update = upd.data;
const orq = await sb.from('messages').select('content').eq('ticket_id', tid).or('content.eq.a,content.eq.b')
  .order('content');
out.or = orq.data.map((r) => r.content);
const emb = await sb.from('tickets').select('id, messages(content)').eq('id', tid).single();
out.embedded = emb.data.messages.length;
const rpc = await sb.rpc('sync_messages', { after_xid: 0, after_id: 0, max_rows: 2 });
out.rpc = { error: rpc.error, n: rpc.data?.length };
const spoof = await sb.from('messages').insert({ ticket_id: tid, content: 'x', sender_id: otherUser });
out.spoof = { code: spoof.error?.code, status: spoof.status };
const del = await sb.from('messages').delete().eq('ticket_id', tid).select();
out.del = { status: del.status, rows: del.data?.length };
console.log(JSON.stringify(out));
"""


@pytest.mark.node
def test_supabase_js_rest_round_trip(stack: StackProcess, users: Users, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (the project installs Node 20)"
    script = JS_DIR / f".rest-smoke-{tmp_path.name}.mjs"  # inside tests/js so node_modules resolves
    script.write_text(SCRIPT)
    try:
        run = subprocess.run(
            [node, str(script), stack.api_url, stack.anon_key, stack.mint(sub=users.customer.id), users.agent.id],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=JS_DIR,
            check=False,
        )
    finally:
        script.unlink()
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["ticket"] == {"error": None, "subject": "from js"}
    assert out["minimal"] == {"status": 201, "data": None, "error": None}
    assert out["bulk"] == ["a", "b"]
    assert out["page"] == {"data": [{"content": "minimal"}, {"content": "b"}], "count": 3, "status": 206}
    assert out["head"] == {"count": 3, "data": None, "status": 200}
    assert out["maybe"] == {"data": None, "error": None}
    assert out["single"] == {"code": "PGRST116", "status": 406}
    assert out["upsert"] == {"error": None, "rows": 1}
    assert out["update"] == [{"status": "resolved"}]
    assert out["or"] == ["a", "b"]
    assert out["embedded"] == 3
    assert out["rpc"]["error"] is None
    assert out["rpc"]["n"] == 2
    assert out["spoof"] == {"code": "42501", "status": 403}
    # nobody deletes messages: no DELETE grant (nor policy), so the API refuses it outright
    assert out["del"] == {"status": 403}
