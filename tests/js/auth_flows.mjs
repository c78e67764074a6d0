// supabase-js against localbase's emailed and MFA flows (issue 17): email OTP sign-in, magic link
// followed like a browser, password recovery, admin invite and generateLink, TOTP enrol/verify to
// aal2, SSO refused. Mail is read from the stack's inbox API with the service key. Run by
// tests/test_auth_js.py with SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY; prints one
// JSON line with what it saw and exits non-zero on the first failed check.
import assert from 'node:assert/strict'
import { createHmac, randomUUID } from 'node:crypto'
import { createClient } from '@supabase/supabase-js'
import { options } from './support.mjs'

const url = process.env.SUPABASE_URL
const anonKey = process.env.SUPABASE_ANON_KEY
const serviceKey = process.env.SUPABASE_SERVICE_ROLE_KEY
assert.ok(url && anonKey && serviceKey, 'SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY are required')

const newClient = (key = anonKey) => createClient(url, key, options)
const newEmail = () => `jsmail-${randomUUID().slice(0, 12)}@test.supportchat.local`
const appUrl = 'http://127.0.0.1:8765/welcome'
const out = {}

async function lastMail (to) {
  const headers = { apikey: serviceKey }
  const listed = await (await fetch(`${url}/inbox/api/v1/messages`, { headers })).json()
  const mine = listed.messages.filter((m) => m.To[0].Address === to)
  assert.ok(mine.length > 0, `no mail for ${to}`)
  const message = await (await fetch(`${url}/inbox/api/v1/message/${mine[0].ID}`, { headers })).json()
  const link = message.Text.match(/(http:\/\/\S+\/auth\/v1\/verify\?\S+)/)
  return { subject: message.Subject, link: link && link[1], code: message.Text.match(/code: (\d{6})/)[1] }
}

function totp (secret) { // RFC 6238 with SHA-1, 30 s, 6 digits
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const ch of secret.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0xf
  return ((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).toString().padStart(6, '0')
}

// --- email OTP ----------------------------------------------------------------------------------
{
  const c = newClient()
  const email = newEmail()
  const { error } = await c.auth.signInWithOtp({ email, options: { emailRedirectTo: appUrl } })
  assert.equal(error, null, `signInWithOtp: ${error?.message}`)
  const mail = await lastMail(email)
  assert.equal(mail.subject, 'Your Magic Link')
  const { data, error: verr } = await c.auth.verifyOtp({ email, token: mail.code, type: 'email' })
  assert.equal(verr, null, `verifyOtp: ${verr?.message}`)
  assert.equal(data.user.email, email)
  const again = await c.auth.verifyOtp({ email, token: mail.code, type: 'email' })
  assert.equal(again.error?.code, 'otp_expired')
  out.otp_user = data.user.id
}

// --- magic link (implicit flow: the link lands on the app with the session in the fragment) ------
{
  const c = newClient()
  const email = newEmail()
  await c.auth.signInWithOtp({ email, options: { emailRedirectTo: appUrl } })
  const { link } = await lastMail(email)
  const landed = await fetch(link, { redirect: 'manual' })
  assert.equal(landed.status, 303)
  const location = landed.headers.get('location')
  assert.ok(location.startsWith(`${appUrl}#access_token=`), location)
  const params = new URLSearchParams(location.split('#')[1])
  const { data, error } = await c.auth.setSession({ access_token: params.get('access_token'), refresh_token: params.get('refresh_token') })
  assert.equal(error, null, `setSession: ${error?.message}`)
  assert.equal(data.user.email, email)
}

// --- recovery ---------------------------------------------------------------------------------
{
  const c = newClient()
  const email = newEmail()
  await c.auth.signUp({ email, password: 'js-old-Passw0rd' })
  await c.auth.signOut()
  const { error } = await c.auth.resetPasswordForEmail(email, { redirectTo: appUrl })
  assert.equal(error, null, `resetPasswordForEmail: ${error?.message}`)
  const { code } = await lastMail(email)
  const { error: verr } = await c.auth.verifyOtp({ email, token: code, type: 'recovery' })
  assert.equal(verr, null, `verifyOtp recovery: ${verr?.message}`)
  assert.equal((await c.auth.updateUser({ password: 'js-new-Passw0rd' })).error, null)
  await c.auth.signOut()
  const { data } = await c.auth.signInWithPassword({ email, password: 'js-new-Passw0rd' })
  assert.ok(data.session, 'the new password signs in')
  out.recovered = true
}

// --- admin: invite with a role set server-side, generateLink -----------------------------------
{
  const admin = newClient(serviceKey)
  const email = newEmail()
  const { data, error } = await admin.auth.admin.inviteUserByEmail(email, { redirectTo: appUrl, data: { display_name: 'JS Invitee' } })
  assert.equal(error, null, `inviteUserByEmail: ${error?.message}`)
  await admin.auth.admin.updateUserById(data.user.id, { app_metadata: { role: 'agent' } })
  const { subject, link } = await lastMail(email)
  assert.equal(subject, 'You have been invited')
  const params = new URLSearchParams((await fetch(link, { redirect: 'manual' })).headers.get('location').split('#')[1])
  assert.equal(params.get('type'), 'invite')
  const c = newClient()
  await c.auth.setSession({ access_token: params.get('access_token'), refresh_token: params.get('refresh_token') })
  assert.equal((await c.auth.updateUser({ password: 'js-invited-Passw0rd' })).error, null)
  await c.auth.signOut()
  const signedIn = await c.auth.signInWithPassword({ email, password: 'js-invited-Passw0rd' })
  assert.equal(signedIn.data.user.app_metadata.role, 'agent')
  out.invited_user = signedIn.data.user.id

  const generated = await admin.auth.admin.generateLink({ type: 'magiclink', email: newEmail() })
  assert.equal(generated.error, null, `generateLink: ${generated.error?.message}`)
  assert.equal(generated.data.properties.verification_type, 'signup') // unknown address: a sign-up link, as GoTrue
  assert.match(generated.data.properties.email_otp, /^\d{6}$/)
}

// --- MFA: TOTP to aal2 ----------------------------------------------------------------------------
{
  const c = newClient()
  await c.auth.signUp({ email: newEmail(), password: 'js-mfa-Passw0rd' })
  const enrolled = await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'js app' })
  assert.equal(enrolled.error, null, `enroll: ${enrolled.error?.message}`)
  assert.ok(enrolled.data.totp.qr_code.startsWith('data:image/svg+xml'))
  const verified = await c.auth.mfa.challengeAndVerify({ factorId: enrolled.data.id, code: totp(enrolled.data.totp.secret) })
  assert.equal(verified.error, null, `challengeAndVerify: ${verified.error?.message}`)
  const level = await c.auth.mfa.getAuthenticatorAssuranceLevel()
  assert.equal(level.data.currentLevel, 'aal2')
  const wrong = await c.auth.mfa.challengeAndVerify({ factorId: enrolled.data.id, code: '000000' === totp(enrolled.data.totp.secret) ? '111111' : '000000' })
  assert.equal(wrong.error?.code, 'mfa_verification_failed')
  out.aal = level.data.currentLevel
}

// --- SSO is not configured: GoTrue's answer -----------------------------------------------------------
{
  const { error } = await newClient().auth.signInWithSSO({ domain: 'example.com' })
  assert.equal(error?.status, 404)
  assert.equal(error?.message, 'SAML 2.0 is disabled')
}

console.log(JSON.stringify(out))
