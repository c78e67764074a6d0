// supabase-js (vsn 2.0.0, binary broadcast frames) broadcast and presence against localbase.
// MODE=js: two supabase-js clients round-trip broadcasts (self, ack) and presence, then print one JSON line.
// MODE=cross: join CROSS_TOPIC with presence key "js", track, print {"ready":true}, answer the Python
// client's "ping" broadcast with "pong", wait until the Python presence appears and print what was seen.
// Run by tests/realtime/test_realtime_js.py with SUPABASE_URL and SUPABASE_ANON_KEY (and ACCESS_TOKEN).
import assert from 'node:assert/strict'
import { createClient } from '@supabase/supabase-js'
import { options, sleep, waitFor } from './support.mjs'

const env = process.env
function newClient () {
  const client = createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, options)
  if (env.ACCESS_TOKEN) client.realtime.setAuth(env.ACCESS_TOKEN)
  return client
}
async function subscribed (channel) {
  const status = []
  channel.subscribe((s, err) => status.push(err ? `${s}: ${err.message}` : s))
  await waitFor(() => status.length > 0, 'subscribe')
  assert.equal(status[0], 'SUBSCRIBED')
}

if (env.MODE === 'js') {
  const a = newClient()
  const b = newClient()
  const seenA = []
  const seenB = []
  const chA = a.channel('js-room', { config: { broadcast: { self: true, ack: true }, presence: { key: 'alice' } } })
    .on('broadcast', { event: 'typing' }, (m) => seenA.push(m))
    .on('presence', { event: 'sync' }, () => {})
  const chB = b.channel('js-room', { config: { presence: { key: 'bob' } } })
    .on('broadcast', { event: '*' }, (m) => seenB.push(m))
    .on('presence', { event: 'sync' }, () => {})
  await subscribed(chA)
  await subscribed(chB)
  const ack = await chA.send({ type: 'broadcast', event: 'typing', payload: { who: 'alice', text: 'héllo ✓' } })
  await chB.send({ type: 'broadcast', event: 'typing', payload: { who: 'bob' } })
  await waitFor(() => seenA.length === 2 && seenB.length === 1, 'broadcasts')
  const trackA = await chA.track({ viewing: 'ticket-1' })
  const trackB = await chB.track({ typing: true })
  await waitFor(() => 'alice' in chB.presenceState() && 'bob' in chA.presenceState(), 'presence both ways')
  const metaAtB = chB.presenceState().alice[0]
  await chA.untrack()
  await waitFor(() => !('alice' in chB.presenceState()), 'alice untracked')
  const out = {
    ack, trackA, trackB,
    seenA: seenA.map((m) => m.payload),
    seenB: seenB.map((m) => ({ event: m.event, payload: m.payload })),
    metaAtB,
  }
  await a.removeAllChannels()
  await b.removeAllChannels()
  console.log(JSON.stringify(out))
  process.exit(0)
}

if (env.MODE === 'cross') {
  const c = newClient()
  const pings = []
  const ch = c.channel(env.CROSS_TOPIC, { config: { presence: { key: 'js' } } })
    .on('broadcast', { event: 'ping' }, (m) => pings.push(m.payload))
    .on('presence', { event: 'sync' }, () => {})
  await subscribed(ch)
  const tracked = await ch.track({ lang: 'js' })
  console.log(JSON.stringify({ ready: true, tracked }))
  await waitFor(() => pings.length > 0, 'ping from python', 15000)
  const sent = await ch.send({ type: 'broadcast', event: 'pong', payload: { echo: pings[0], from: 'js' } })
  await waitFor(() => 'py' in ch.presenceState(), 'python presence', 15000)
  const out = { pings, sent, py_meta: ch.presenceState().py[0] }
  await sleep(200)
  await c.removeAllChannels()
  console.log(JSON.stringify(out))
  process.exit(0)
}
throw new Error(`unknown MODE ${env.MODE}`)
