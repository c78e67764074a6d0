"""/rest/v1: the PostgREST subset that supabase-py and supabase-js use, with PostgreSQL deciding RLS.

grammar   pure parsing of filters, logic trees, order, Prefer, Range; depth and size bounds
select    pure parsing of select lists: columns, casts, JSON paths, embeds, spreads, aggregates
catalog   schema cache of public tables, views, keys, foreign keys, functions (pg_catalog)
query     SQL composition: identifiers from the catalog only, values as bound parameters
embed     relationship resolution (m2o, o2m, o2o, m2m, computed, views) and embed SQL
request   query string split into select/filters/order/paging/embedding args; bounded JSON body
session   JWT → role and claims; one transaction per request set up exactly as PostgREST does
response  media types, profiles, Content-Range, statuses
rpc       /rpc/<function>
routes    the Starlette mount, table handlers
errors    PostgREST error bodies and the SQLSTATE → HTTP status mapping
"""
