// supabase-js with the Supabase CLI's well-known demo keys hardcoded, as tutorials and apps write them
// (issue 17: localbase's demo keys were different strings, and /auth/v1 compares keys exactly). Run by
// tests/test_auth_js.py against a `--demo` stack with SUPABASE_URL and DEMO_EMAIL/DEMO_PASSWORD.
import assert from 'node:assert/strict'
import { createClient } from '@supabase/supabase-js'
import { options } from './support.mjs'

const ANON = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0'
const SERVICE = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU'
const url = process.env.SUPABASE_URL

const client = createClient(url, ANON, options)
const { data, error } = await client.auth.signInWithPassword({ email: process.env.DEMO_EMAIL, password: process.env.DEMO_PASSWORD })
assert.equal(error, null, `signInWithPassword with the CLI anon key: ${error?.message}`)
const tickets = await client.from('tickets').select('id')
assert.equal(tickets.error, null, `select: ${tickets.error?.message}`)
const admin = createClient(url, SERVICE, options)
const listed = await admin.auth.admin.listUsers()
assert.equal(listed.error, null, `listUsers with the CLI service_role key: ${listed.error?.message}`)
console.log(JSON.stringify({ user: data.user.email, tickets: tickets.data.length, users: listed.data.users.length }))
