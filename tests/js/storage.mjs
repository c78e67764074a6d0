// supabase-js storage against localbase, run by tests/test_storage_js.py with SUPABASE_URL,
// SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY and WORLD (JSON: user tokens, ticket and message ids) in
// the environment. Buckets as the service role, then the attachments bucket as a customer, another
// customer and an agent. Prints one JSON line with what it saw; exits non-zero on the first failed check.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createClient } from '@supabase/supabase-js'
import { options } from './support.mjs'

const url = process.env.SUPABASE_URL
const anonKey = process.env.SUPABASE_ANON_KEY
const serviceKey = process.env.SUPABASE_SERVICE_ROLE_KEY
const world = JSON.parse(process.env.WORLD)
const asUser = (token) => createClient(url, anonKey, { ...options, global: { headers: { Authorization: `Bearer ${token}` } } })
const out = {}
const ok = ({ data, error }, what) => { assert.equal(error, null, `${what}: ${error?.message}`); return data }
const fails = ({ data, error }, what) => { assert.ok(error, `${what} should fail, got ${JSON.stringify(data)}`); return error }

// --- buckets and objects as the service role ---------------------------------------------------
const svc = createClient(url, serviceKey, options).storage
const bucket = `js-${randomUUID().slice(0, 8)}`
ok(await svc.createBucket(bucket, { public: false, fileSizeLimit: '1MB', allowedMimeTypes: ['text/plain', 'image/*'] }), 'createBucket')
const got = ok(await svc.getBucket(bucket), 'getBucket')
assert.deepEqual([got.public, got.file_size_limit, got.allowed_mime_types], [false, 1000000, ['text/plain', 'image/*']])
assert.ok(ok(await svc.listBuckets(), 'listBuckets').some((b) => b.id === bucket))
ok(await svc.updateBucket(bucket, { public: true, fileSizeLimit: 2048, allowedMimeTypes: ['text/plain', 'image/*'] }), 'updateBucket')
const files = svc.from(bucket)
const raw = ok(await files.upload('docs/raw.txt', Buffer.from('raw body'), { contentType: 'text/plain', cacheControl: '120', metadata: { via: 'buffer' } }), 'upload Buffer')
assert.equal(raw.fullPath, `${bucket}/docs/raw.txt`)
const info = ok(await files.info('docs/raw.txt'), 'info')
assert.deepEqual([info.size, info.contentType, info.cacheControl, info.metadata], [8, 'text/plain', 'max-age=120', { via: 'buffer' }])
ok(await files.upload('docs/blob.png', new Blob([Buffer.from('png bytes')], { type: 'image/png' })), 'upload Blob (multipart)')
const dup = fails(await files.upload('docs/raw.txt', Buffer.from('again'), { contentType: 'text/plain' }), 'duplicate upload')
assert.equal(dup.statusCode, '409')
ok(await files.upload('docs/raw.txt', Buffer.from('raw body 2'), { contentType: 'text/plain', upsert: true }), 'upsert')
const blob = ok(await files.download('docs/raw.txt'), 'download')
assert.equal(await blob.text(), 'raw body 2')
assert.equal(ok(await files.exists('docs/raw.txt'), 'exists'), true)
assert.equal((await files.exists('docs/none.txt')).data, false)
const listed = ok(await files.list('docs', { limit: 10, offset: 0, sortBy: { column: 'name', order: 'desc' } }), 'list')
assert.deepEqual(listed.map((f) => f.name), ['raw.txt', 'blob.png'])
const big = fails(await files.upload('docs/big.txt', Buffer.alloc(4096, 1), { contentType: 'text/plain' }), 'oversized')
assert.equal(big.statusCode, '413')
const html = fails(await files.upload('docs/x.html', Buffer.from('<b>'), { contentType: 'text/html' }), 'wrong type')
assert.equal(html.statusCode, '415')
const signed = ok(await files.createSignedUrl('docs/raw.txt', 60), 'createSignedUrl')
assert.equal(await (await fetch(signed.signedUrl)).text(), 'raw body 2')
const many = ok(await files.createSignedUrls(['docs/raw.txt', 'docs/none.txt'], 60), 'createSignedUrls')
assert.ok(many[0].signedUrl && many[1].error && !many[1].signedUrl)
const upload = ok(await files.createSignedUploadUrl('docs/signed.txt'), 'createSignedUploadUrl')
ok(await files.uploadToSignedUrl('docs/signed.txt', upload.token, Buffer.from('signed upload'), { contentType: 'text/plain' }), 'uploadToSignedUrl')
const pub = files.getPublicUrl('docs/signed.txt').data.publicUrl
assert.equal(await (await fetch(pub)).text(), 'signed upload')
ok(await files.move('docs/signed.txt', 'moved/signed.txt'), 'move')
ok(await files.copy('moved/signed.txt', 'copied/signed.txt'), 'copy')
const removed = ok(await files.remove(['moved/signed.txt', 'copied/signed.txt']), 'remove')
assert.equal(removed.length, 2)
ok(await svc.emptyBucket(bucket), 'emptyBucket')
ok(await svc.deleteBucket(bucket), 'deleteBucket')
out.service = 'ok'

// --- attachments as each role ------------------------------------------------------------------
const customer = asUser(world.customer).storage.from('attachments')
const customer2 = asUser(world.customer2).storage.from('attachments')
const agent = asUser(world.agent).storage.from('attachments')
const anon = createClient(url, anonKey, options).storage.from('attachments')
const path = `${world.t_open}/${world.m_customer}/from-js.png`
ok(await customer.upload(path, new Blob([Buffer.from('js screenshot')], { type: 'image/png' })), 'customer upload')
assert.equal(await ok(await customer.download(path), 'customer download').text(), 'js screenshot')
assert.equal(await ok(await agent.download(path), 'agent download').text(), 'js screenshot')
const stolen = fails(await customer2.download(path), 'customer2 download')
assert.equal(stolen.statusCode, '404')
assert.deepEqual(ok(await customer2.list(world.t_open), 'customer2 list'), [])
fails(await customer2.createSignedUrl(path, 60), 'customer2 sign')
fails(await customer2.move(path, `${world.t_other}/${world.m_other}/stolen.png`), 'customer2 move')
fails(await anon.download(path), 'anon download')
const closed = fails(await customer.upload(`${world.t_closed}/${randomUUID()}/late.png`, Buffer.from('x'), { contentType: 'image/png' }), 'closed ticket')
assert.equal(closed.statusCode, '403')
const svg = fails(await customer.upload(`${world.t_open}/${randomUUID()}/x.svg`, Buffer.from('<svg/>'), { contentType: 'image/svg+xml' }), 'svg')
assert.equal(svg.statusCode, '415')
assert.deepEqual(ok(await agent.remove([path]), 'agent remove'), [])
const mine = ok(await customer.remove([path]), 'customer remove')
assert.equal(mine.length, 1)
out.attachments = 'ok'
out.path = path
console.log(JSON.stringify(out))
