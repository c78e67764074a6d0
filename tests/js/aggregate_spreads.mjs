// Aggregates inside spreads through supabase-js (issue 17), against the pgx_* fixture with aggregates enabled
// (tests/test_rest_aggregate_spreads.py sets both up): spread columns group the parent's aggregates, an
// aggregate in a to-one spread is hoisted to the root (also through nested spreads), a to-many spread
// refuses them. Needs SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_TOKEN; prints one JSON line.
import { createClient } from '@supabase/supabase-js'
import { options } from './support.mjs'

const sb = createClient(process.env.SUPABASE_URL, process.env.SUPABASE_ANON_KEY, {
  ...options, global: { headers: { Authorization: `Bearer ${process.env.SUPABASE_TOKEN}` } }
})
const out = {}
const data = (res) => res.data ?? res.error

out.grouped = data(await sb.from('pgx_films').select('latest:year.max(),...pgx_directors(director:name)')
  .order('pgx_directors(name)'))
out.hoisted = data(await sb.from('pgx_specs').select('...pgx_films(first:year.min(),last:year.max())'))
out.counted = data(await sb.from('pgx_films').select('...pgx_specs(count())'))
out.nested = data(await sb.from('pgx_roles').select('...pgx_films(...pgx_directors(director:name),roles:count())'))
const toMany = await sb.from('pgx_directors').select('name,...pgx_films(year.max())')
out.toMany = { status: toMany.status, code: toMany.error?.code }
console.log(JSON.stringify(out))
