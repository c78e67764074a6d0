"""Tables, views and functions in the shapes of PostgREST's documentation (films, orders, employees), made by
the tests that need them (issue 17): one-to-one, many-to-many, two keys to one table, a self-reference,
a view, computed fields and relationships, overloaded functions. Created as the database owner role
(`postgres` when the stack has it, as on Supabase) with explicit grants, RLS on and a policy each.
"""

from __future__ import annotations

import psycopg

TABLES = (
    "pgx_addresses",
    "pgx_orders",
    "pgx_directors",
    "pgx_films",
    "pgx_specs",
    "pgx_actors",
    "pgx_roles",
    "pgx_employees",
    "pgx_shapes",
    "pgx_sales",
    "pgx_counters",
)

SQL = """
drop view if exists pgx_films_view, pgx_cast;
drop table if exists pgx_roles, pgx_specs, pgx_films, pgx_directors, pgx_actors, pgx_orders, pgx_addresses,
  pgx_employees, pgx_shapes, pgx_sales, pgx_counters cascade;
drop function if exists pgx_add(int, int), pgx_add(text, text), pgx_add(int), pgx_echo(json), pgx_bump(int),
  pgx_answer(), pgx_shout(text);

create table pgx_addresses (id int primary key, name text);
create table pgx_orders (id int primary key, name text, billing_address_id int, shipping_address_id int,
  constraint pgx_billing foreign key (billing_address_id) references pgx_addresses(id),
  constraint pgx_shipping foreign key (shipping_address_id) references pgx_addresses(id));
create table pgx_directors (id int primary key, name text);
create table pgx_films (id int primary key, title text, year int, director_id int references pgx_directors(id));
create table pgx_specs (film_id int primary key references pgx_films(id), camera text);
create table pgx_actors (id int primary key, name text);
create table pgx_roles (film_id int references pgx_films(id), actor_id int references pgx_actors(id),
  character text, primary key (film_id, actor_id));
create table pgx_employees (id int primary key, name text, supervisor_id int references pgx_employees(id));
create table pgx_shapes (id int primary key, span int4range, tags text[]);
create table pgx_sales (id int primary key, region text, amount numeric);
create table pgx_counters (id int primary key, n int not null default 0);
create view pgx_films_view as select id, title, director_id from pgx_films;
create view pgx_cast as select r.film_id as movie, r.character, a.name as actor from pgx_roles r
  join pgx_actors a on a.id = r.actor_id;

create function pgx_label(pgx_films) returns text stable language sql
  as $$ select $1.title || ' (' || $1.year || ')' $$;
create function pgx_supervisees(pgx_employees) returns setof pgx_employees stable language sql
  as $$ select * from pgx_employees where supervisor_id = $1.id order by id $$;
create function pgx_boss(pgx_employees) returns setof pgx_employees rows 1 stable language sql
  as $$ select * from pgx_employees where id = $1.supervisor_id $$;
create function pgx_add(a int, b int) returns int immutable language sql as $$ select a + b $$;
create function pgx_add(a text, b text) returns text immutable language sql as $$ select a || b $$;
create function pgx_add(x int) returns int immutable language sql as $$ select x + 100 $$;
create function pgx_echo(json) returns json immutable language sql as $$ select json_build_object('got', $1) $$;
create function pgx_bump(step int) returns setof pgx_counters volatile language sql
  as $$ update pgx_counters set n = n + step returning * $$;
create function pgx_answer() returns int immutable language sql as $$ select 42 $$;
create function pgx_shout(text) returns text immutable language sql as $$ select upper($1) $$;

insert into pgx_addresses values (1, 'Home'), (2, 'Office');
insert into pgx_orders values (1, 'Coffee machine', 1, 2), (2, 'Water filter', 2, 2);
insert into pgx_directors values (1, 'Quentin'), (2, 'Agnes');
insert into pgx_films values (1, 'Pulp Fiction', 1994, 1), (2, 'Reservoir Dogs', 1992, 1), (3, 'Cleo', 1962, 2);
insert into pgx_specs values (1, 'Arriflex'), (2, 'Panavision');
insert into pgx_actors values (1, 'Uma'), (2, 'Harvey'), (3, 'Tim');
insert into pgx_roles values (1, 1, 'Mia'), (1, 2, 'Winston'), (2, 2, 'Mr. White'), (2, 3, 'Mr. Orange');
insert into pgx_employees values (1, 'Taylor', null), (2, 'Johnson', 1), (3, 'Miller', 1);
insert into pgx_shapes values (1, '[1,5)', '{a,b}'), (2, '[10,20)', '{c}'), (3, '[3,12)', '{a,c}');
insert into pgx_sales values (1, 'north', 10), (2, 'north', 5), (3, 'south', 7);
insert into pgx_counters values (1, 0), (2, 0), (3, 0);
"""


def create(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_roles where rolname = 'postgres' and not rolsuper").fetchone():
            conn.execute("set role postgres")
        conn.execute(SQL)
        for table in (*TABLES, "pgx_films_view", "pgx_cast"):
            conn.execute(f"grant select, insert, update, delete on {table} to authenticated")
            if table not in ("pgx_films_view", "pgx_cast"):
                conn.execute(f"alter table {table} enable row level security")
                conn.execute(f"create policy everyone on {table} to authenticated using (true) with check (true)")
        functions = (
            "pgx_label(pgx_films), pgx_supervisees(pgx_employees), pgx_boss(pgx_employees), "
            "pgx_add(int, int), pgx_add(text, text), pgx_add(int), pgx_echo(json), pgx_bump(int), "
            "pgx_answer(), pgx_shout(text)"
        )
        conn.execute(f"revoke execute on function {functions} from public")
        conn.execute(f"grant execute on function {functions} to authenticated")


def drop(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("drop view if exists pgx_films_view, pgx_cast")
        conn.execute("drop table if exists " + ", ".join(TABLES) + " cascade")
        conn.execute(
            "drop function if exists pgx_add(int, int), pgx_add(text, text), pgx_add(int), pgx_echo(json), "
            "pgx_answer(), pgx_shout(text)"
        )
