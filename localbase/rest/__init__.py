"""/rest/v1: the PostgREST subset."""
