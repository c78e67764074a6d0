"""`/storage/v1`: the part of Supabase Storage that supabase-py's `storage3` and supabase-js's
storage-js use — buckets, objects, signed and public URLs, TUS resumable uploads — on the files of
the data dir, with RLS on `storage.objects` deciding every object access as on Supabase.

Module map:
  service.py  `StorageService` (blob store, limits, open resumable uploads), found on the context
  session.py  the caller (JWT) and one transaction run as them, or as the storage admin
  store.py    the SQL verbs on `storage.buckets`/`storage.objects`; object key checks
  blobs.py    object bytes on disk, one immutable file per version, streamed in and fsynced
  body.py     an upload body (raw or multipart) streamed into a blob, with size and type checks
  buckets.py  /bucket routes (create/get/list/update/empty/delete)
  objects.py  /object routes: upload, update, download, info, list, remove, move, copy, public
  signed.py   signed download URLs (one and batch) and signed upload URLs
  tus.py      /upload/resumable (TUS 1.0.0 creation, HEAD, PATCH, DELETE)
  errors.py   Supabase Storage's error body `{statusCode, code, error, message}`
  routes.py   the Mount that puts it all under /storage/v1
"""
