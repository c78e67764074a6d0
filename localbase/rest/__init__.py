"""/rest/v1: the PostgREST subset that supabase-py and supabase-js use, with PostgreSQL deciding RLS.

    grammar   pure parsing of select lists, filters, logic trees, order, Prefer, Range
    catalog   schema cache of public tables, columns, keys, foreign keys, functions (pg_catalog)
    query     SQL composition: identifiers from the catalog only, values as bound parameters
    request   query string split into select/filters/order/paging/embedding args; bounded JSON body
    session   JWT → role and claims; one transaction per request set up exactly as PostgREST does
    response  media types, profiles, Content-Range, statuses
    rpc       /rpc/<function>
    routes    the Starlette mount, table handlers
    errors    PostgREST error bodies and the SQLSTATE → HTTP status mapping
"""
