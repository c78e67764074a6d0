// supabase-js private channels (Realtime Authorization) against localbase, the way the app uses them:
// the anon key is refused on `ticket:<id>`, the customer and the agent join it, a "typing" signal minted by
// the database (rpc ticket_signal) reaches the customer naming the agent, and a client broadcast forged by
// the customer on the private topic reaches nobody. Prints one JSON line.
// Run by tests/realtime/test_realtime_js.py with SUPABASE_URL, SUPABASE_ANON_KEY, TICKET_ID,
// CUSTOMER_TOKEN and AGENT_TOKEN.
import { createClient } from '@supabase/supabase-js'
import { options, waitFor } from './support.mjs'

const env = process.env
function as (token) {
  const client = createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, {
    ...options, global: { headers: token ? { Authorization: `Bearer ${token}` } : {} }
  })
  if (token) client.realtime.setAuth(token)
  return client
}
async function join (client, received) {
  const status = []
  const channel = client.channel(`ticket:${env.TICKET_ID}`, { config: { private: true } })
    .on('broadcast', { event: '*' }, (m) => received.push({ event: m.event, payload: m.payload }))
  channel.subscribe((s, err) => status.push(err ? `${s}: ${err.message}` : s))
  await waitFor(() => status.length > 0, 'subscribe')
  return { channel, status: status[0] }
}

const anonSeen = []
const customerSeen = []
const agentSeen = []
const anon = as(null)
const customer = as(env.CUSTOMER_TOKEN)
const agent = as(env.AGENT_TOKEN)
const anonJoin = await join(anon, anonSeen)
const customerJoin = await join(customer, customerSeen)
const agentJoin = await join(agent, agentSeen)
// the customer pretends to be the agent: there is no INSERT policy on ticket topics, so it goes nowhere
await customerJoin.channel.send({ type: 'broadcast', event: 'typing', payload: { user_id: 'forged', name: 'Agent' } })
const { error } = await agent.rpc('ticket_signal', { ticket_id: env.TICKET_ID, signal: 'typing' })
await waitFor(() => customerSeen.length > 0, 'the agent typing')
console.log(JSON.stringify({
  anonStatus: anonJoin.status,
  customerStatus: customerJoin.status,
  agentStatus: agentJoin.status,
  rpcError: error ? error.message : null,
  customerSeen,
  agentSeen,
  anonSeen
}))
await Promise.all([anon, customer, agent].map((c) => c.removeAllChannels()))
process.exit(0)
