// supabase-js (vsn 2.0.0) postgres_changes against localbase, signed in with passwords: the owner
// receives the agent's reply, another customer subscribed to the whole table receives none of it,
// the owner never receives the internal note. Run by tests/realtime/test_realtime_js.py with
// SUPABASE_URL, SUPABASE_ANON_KEY, PASSWORD, CUSTOMER_EMAIL, CUSTOMER2_EMAIL, AGENT_EMAIL,
// TICKET_ID (the customer's, assigned to the agent) and TICKET2_ID (customer2's). Prints one JSON line.
import assert from 'node:assert/strict'
import { createClient } from '@supabase/supabase-js'
import { options, sleep, waitFor } from './support.mjs'

const env = process.env
async function signIn (email) {
  const client = createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, options)
  const { data, error } = await client.auth.signInWithPassword({ email, password: env.PASSWORD })
  assert.equal(error, null, `sign in ${email}: ${error?.message}`)
  client.realtime.setAuth(data.session.access_token)
  return client
}
async function listen (client, name, filter) {
  const got = { events: [], system: [], status: [] }
  const channel = client.channel(name)
    .on('postgres_changes', filter, (payload) => got.events.push(payload))
    .on('system', {}, (payload) => got.system.push(payload))
  channel.subscribe((status, err) => got.status.push(err ? `${status}: ${err.message}` : status))
  await waitFor(() => got.system.length > 0, `${name} live`)
  assert.equal(got.status[0], 'SUBSCRIBED')
  assert.equal(got.system[0].message, 'Subscribed to PostgreSQL')
  return got
}

const customer = await signIn(env.CUSTOMER_EMAIL)
const customer2 = await signIn(env.CUSTOMER2_EMAIL)
const agent = await signIn(env.AGENT_EMAIL)
const owner = await listen(customer, 'js-owner',
  { event: 'INSERT', schema: 'public', table: 'messages', filter: `ticket_id=eq.${env.TICKET_ID}` })
const other = await listen(customer2, 'js-other', { event: '*', schema: 'public', table: 'messages' })

const note = await agent.from('messages').insert({ ticket_id: env.TICKET_ID, content: 'js: internal note', is_internal: true }).select().single()
assert.equal(note.error, null, note.error?.message)
const reply = await agent.from('messages').insert({ ticket_id: env.TICKET_ID, content: 'js: agent reply' }).select().single()
assert.equal(reply.error, null, reply.error?.message)
await waitFor(() => owner.events.length >= 1, 'the reply at the owner')
const sentinel = await customer2.from('messages').insert({ ticket_id: env.TICKET2_ID, content: 'js: sentinel' }).select().single()
assert.equal(sentinel.error, null, sentinel.error?.message)
await waitFor(() => other.events.some((e) => e.new.content === 'js: sentinel'), 'the sentinel at customer2')
await sleep(100)

const event = owner.events[0]
const out = {
  owner_contents: owner.events.map((e) => e.new.content),
  other_contents: other.events.map((e) => e.new.content),
  event_type: event.eventType,
  table: event.table,
  schema: event.schema,
  errors: event.errors,
  commit_timestamp: event.commit_timestamp,
  reply_id: reply.data.id,
  received_id: event.new.id,
  received_is_internal: event.new.is_internal,
  rest_row: reply.data,
  received_row: event.new,
}
for (const c of [customer, customer2, agent]) await c.removeAllChannels()
console.log(JSON.stringify(out))
process.exit(0)
