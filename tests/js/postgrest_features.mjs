// PostgREST 12/13 features through supabase-js (issue 17), against the pgx_* fixture that
// tests/test_rest_postgrest_js.py creates: range operators, embeddings (one-to-one, many-to-many, FK column,
// view), spreads, computed fields, or= with array literals, upsert statuses, RPC overloads, a single json
// parameter, maxAffected, counts of scalar functions, aggregates refused by default. Needs SUPABASE_URL,
// SUPABASE_ANON_KEY and SUPABASE_TOKEN (a user's access token); prints one JSON line of what it saw.
import { createClient } from '@supabase/supabase-js'
import { options } from './support.mjs'

const sb = createClient(process.env.SUPABASE_URL, process.env.SUPABASE_ANON_KEY, {
  ...options, global: { headers: { Authorization: `Bearer ${process.env.SUPABASE_TOKEN}` } }
})
const ids = (res) => res.data?.map((r) => r.id) ?? res.error
const out = {}

out.gte = ids(await sb.from('pgx_shapes').select('id').rangeGte('span', '(3,12)').order('id'))
out.lte = ids(await sb.from('pgx_shapes').select('id').rangeLte('span', '(3,12)').order('id'))
out.oneToOne = (await sb.from('pgx_films').select('title,pgx_specs(camera)').order('id')).data
out.manyToMany = (await sb.from('pgx_actors').select('name,pgx_films(title)').eq('id', 2)
  .order('id', { referencedTable: 'pgx_films' })).data
out.byColumn = (await sb.from('pgx_orders').select('name,billing_address_id(name),shipping:pgx_addresses!pgx_shipping(name)')
  .eq('id', 1)).data
const ambiguous = await sb.from('pgx_orders').select('name,pgx_addresses(name)')
out.ambiguous = { status: ambiguous.status, code: ambiguous.error?.code }
out.withSpecs = ids(await sb.from('pgx_films').select('id,pgx_specs(camera)').not('pgx_specs', 'is', null).order('id'))
out.view = (await sb.from('pgx_films_view').select('title,pgx_directors(name)').eq('id', 3)).data
out.spread = (await sb.from('pgx_directors').select('name,...pgx_films(titles:title)').eq('id', 1)
  .order('year', { referencedTable: 'pgx_films' })).data
out.computed = (await sb.from('pgx_films').select('id,pgx_label').eq('pgx_label', 'Cleo (1962)')).data
out.orArray = ids(await sb.from('pgx_shapes').select('id').or('tags.cs.{a,c},id.eq.2').order('id'))
const ignored = await sb.from('pgx_addresses').upsert({ id: 1, name: 'Nope' }, { ignoreDuplicates: true }).select()
out.ignored = { status: ignored.status, data: ignored.data }
const overloaded = await sb.rpc('pgx_add', { a: 1, b: 2 })
out.overload = { status: overloaded.status, code: overloaded.error?.code, byName: (await sb.rpc('pgx_add', { x: 1 })).data }
out.echo = (await sb.rpc('pgx_echo', { anything: [1, 2] })).data
const capped = await sb.rpc('pgx_bump', { step: 5 }).maxAffected(2)
out.capped = { status: capped.status, code: capped.error?.code }
out.afterCap = (await sb.from('pgx_counters').select('n').order('id')).data.map((r) => r.n)
const answer = await sb.rpc('pgx_answer', {}, { count: 'exact' })
out.answer = { data: answer.data, count: answer.count }
out.legacyCount = (await sb.from('pgx_directors').select('name, pgx_films(count)').order('id')).data
const agg = await sb.from('pgx_sales').select('region,amount.sum()')
out.aggregate = { status: agg.status, code: agg.error?.code }
console.log(JSON.stringify(out))
