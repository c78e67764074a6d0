// supabase-js smoke test against localbase: auth first (sign-up, sign-in, refresh, errors, admin),
// then REST through the signed-in session (insert a ticket and a message, select them back, RLS
// hides them from another customer). Run by tests/test_js_smoke.py with SUPABASE_URL,
// SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY in the environment; prints one JSON line with what
// it saw and exits non-zero on the first failed check.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createClient, AuthWeakPasswordError } from '@supabase/supabase-js'
import { options } from './support.mjs'

const url = process.env.SUPABASE_URL
const anonKey = process.env.SUPABASE_ANON_KEY
const serviceKey = process.env.SUPABASE_SERVICE_ROLE_KEY
assert.ok(url && anonKey && serviceKey, 'SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY are required')

const newClient = (key = anonKey) => createClient(url, key, options)
const newEmail = () => `js-${randomUUID().slice(0, 12)}@test.supportchat.local`
const password = 'js-smoke-Passw0rd'
const out = {}

// --- auth -----------------------------------------------------------------------------------
const alice = newClient()
const aliceEmail = newEmail()
{
  const { data, error } = await alice.auth.signUp({ email: aliceEmail, password, options: { data: { display_name: 'JS Alice' } } })
  assert.equal(error, null, `signUp: ${error?.message}`)
  assert.ok(data.session?.access_token, 'signUp returns a session (autoconfirm)')
  assert.equal(data.user.email, aliceEmail)
  assert.equal(data.user.user_metadata.display_name, 'JS Alice')
  out.user_id = data.user.id
}
{
  const { error } = await newClient().auth.signUp({ email: aliceEmail, password })
  assert.equal(error?.code, 'user_already_exists')
  assert.equal(error?.status, 422)
}
{
  const { error } = await newClient().auth.signUp({ email: newEmail(), password: '123' })
  assert.ok(error instanceof AuthWeakPasswordError, `weak password error, got ${error}`)
  assert.deepEqual(error.reasons, ['length'])
}
{
  const { error } = await newClient().auth.signInWithPassword({ email: aliceEmail, password: 'wrong-password' })
  assert.equal(error?.code, 'invalid_credentials')
  assert.equal(error?.status, 400)
}
{
  const { data, error } = await alice.auth.signInWithPassword({ email: aliceEmail, password })
  assert.equal(error, null, `signIn: ${error?.message}`)
  assert.equal(data.user.id, out.user_id)
  out.first_refresh_token = data.session.refresh_token
}
{
  const { data, error } = await alice.auth.getUser()
  assert.equal(error, null, `getUser: ${error?.message}`)
  assert.equal(data.user.id, out.user_id)
}
{
  const { data, error } = await alice.auth.refreshSession()
  assert.equal(error, null, `refreshSession: ${error?.message}`)
  assert.notEqual(data.session.refresh_token, out.first_refresh_token)
  out.refreshed = true
}
{
  const { data, error } = await alice.auth.updateUser({ data: { team: 'js' } })
  assert.equal(error, null, `updateUser: ${error?.message}`)
  assert.equal(data.user.user_metadata.team, 'js')
  assert.equal(data.user.user_metadata.display_name, 'JS Alice')
}

// --- admin API with the service key; a user token is refused -----------------------------------
const admin = newClient(serviceKey)
{
  const { data, error } = await admin.auth.admin.createUser({
    email: newEmail(), password, email_confirm: true, app_metadata: { role: 'agent' },
  })
  assert.equal(error, null, `admin.createUser: ${error?.message}`)
  assert.equal(data.user.app_metadata.role, 'agent')
  out.agent_id = data.user.id
  const listed = await admin.auth.admin.listUsers({ page: 1, perPage: 2 })
  assert.equal(listed.error, null, `admin.listUsers: ${listed.error?.message}`)
  assert.equal(listed.data.users.length, 2)
  const removed = await admin.auth.admin.deleteUser(out.agent_id)
  assert.equal(removed.error, null, `admin.deleteUser: ${removed.error?.message}`)
  const { data: session } = await alice.auth.getSession()
  const asUser = createClient(url, anonKey, { ...options, global: { headers: { Authorization: `Bearer ${session.session.access_token}` } } })
  const refused = await asUser.auth.admin.listUsers()
  assert.equal(refused.error?.code, 'not_admin')
  assert.equal(refused.error?.status, 403)
}

// --- REST through the signed-in session ---------------------------------------------------------
{
  const { data: ticket, error } = await alice.from('tickets').insert({ subject: 'JS smoke ticket' }).select().single()
  assert.equal(error, null, `insert ticket: ${error?.message}`)
  assert.equal(ticket.customer_id, out.user_id)
  assert.equal(ticket.status, 'open')
  out.ticket_id = ticket.id
  const messageId = randomUUID()
  const inserted = await alice.from('messages').insert({ id: messageId, ticket_id: ticket.id, content: 'Hello from Node' })
  assert.equal(inserted.error, null, `insert message: ${inserted.error?.message}`)
  assert.equal(inserted.status, 201)
  const { data: rows, error: selectError } = await alice.from('messages').select('id, content, sender_id').eq('ticket_id', ticket.id)
  assert.equal(selectError, null, `select messages: ${selectError?.message}`)
  assert.deepEqual(rows, [{ id: messageId, content: 'Hello from Node', sender_id: out.user_id }])
  out.message_id = messageId
  const bob = newClient()
  const signed = await bob.auth.signUp({ email: newEmail(), password })
  assert.equal(signed.error, null)
  const hidden = await bob.from('messages').select('id').eq('ticket_id', ticket.id)
  assert.equal(hidden.error, null)
  assert.deepEqual(hidden.data, [])
  const { count } = await alice.from('tickets').select('*', { count: 'exact', head: true }).eq('id', ticket.id)
  assert.equal(count, 1)
}

// --- sign out: the old access token's session is gone ----------------------------------------------
{
  const { data: before } = await alice.auth.getSession()
  const token = before.session.access_token
  const { error } = await alice.auth.signOut()
  assert.equal(error, null, `signOut: ${error?.message}`)
  const { error: gone } = await newClient().auth.getUser(token)
  // auth-js turns exactly the `session_not_found` error code into AuthSessionMissingError
  assert.equal(gone?.name, 'AuthSessionMissingError')
  out.signed_out = true
}

console.log(JSON.stringify(out))
