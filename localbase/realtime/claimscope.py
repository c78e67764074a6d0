"""Which JWT claims a table's SELECT policies can read: the proof that lets sessions of one user share an RLS check.

The realtime RLS check (rls.py) runs once per distinct subscriber identity and batch. Two sessions of one user
differ only in their claims (`session_id`, `iat`, `exp`, `amr`, `aal`, ...); the checker sets nothing else per
identity (the role, which is part of the identity, and `request.jwt.claims`). So if every way the table's policies
can read the claims reads only top-level keys from a known set K, two identities with the same role and the same
values of K get the same verdict, and one check answers for both. This module computes K for a table, or says
"not proven", in which case every session is checked with its own claims, as Supabase's walrus does. A wrong K is
a data leak, so every doubt is "not proven".

The proof walks what a SELECT on the table can run, parsed with pglast (PostgreSQL's own parser, for SQL that
PostgreSQL deparsed or that function authors wrote; hand-written scanning of SQL would get quoting wrong):
  * the table's SELECT/ALL policies (`pg_get_expr` of `polqual`), and for every relation those expressions or
    bodies name, its policies and, for a view, its definition; names resolve in every schema at once (whatever a
    search_path would pick is among them);
  * every function they call, by name in every schema and every overload: SQL functions by their parsed body
    (SELECT statements only, no row locks, no data-modifying statements), built-ins (`pg_catalog`, C/internal)
    allowed except those that read settings or run SQL given as text; anything else (plpgsql, C outside
    pg_catalog, user aggregates, a body that does not parse) is not proven;
  * every user-defined operator, cast, domain check and type I/O function in the database (they run without being
    named), the same way.
The claims are read only through `current_setting('request.jwt.claims', ...)` (any other setting is the same for
every identity of a check; a setting name that is not a literal is not proven) or a function that returns them
whole (a SQL function of no arguments whose body is only the claims, like `auth.jwt()`). Such a value may only be
used as `<claims> ->> 'key'` or `<claims> -> 'key'`, through casts to jsonb/json/text, `nullif` and `coalesce`:
that key joins K. Any other use (passed to a function, compared, cast elsewhere, `#>>`, the whole object) is not
proven. So the app's tables prove K = {sub, aal}: `auth.uid()` reads `sub`, `private.mfa_satisfied()` reads `aal`;
a user's sessions at aal1 share one check, an aal2 session of the same user has its own.

The proof is only as fresh as the catalog it read: rls.py bumps an epoch on every DDL (an event trigger) and the
check compares it after evaluating, so a verdict shared under a changed catalog is thrown away and asked again per
session (see rls.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import parser
from psycopg import AsyncConnection

CLAIMS_SETTING = "request.jwt.claims"
KEY_OPERATORS = ("->>", "->")
CLAIMS_TYPES = frozenset({"jsonb", "json", "text"})  # casts a claims value may pass through on its way to a key
# built-ins that read settings (the claims are one) or run SQL given as text: a policy calling one is not proven
DENIED_BUILTINS = frozenset({"set_config", "pg_show_all_settings", "ts_stat", "ts_rewrite"})
DENIED_BUILTIN_PATTERN = re.compile(r"xml")  # query_to_xml, cursor_to_xml, table_to_xml...: run SQL by name
DENIED_SYSTEM_RELATIONS = frozenset({"pg_settings"})
WRITES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})


class Unproven(Exception):
    """The policies might read claims beyond a known set of keys: check every session with its own claims."""


@dataclass(frozen=True)
class Function:
    oid: int
    schema: str
    name: str
    language: str
    source: str
    nargs: int
    kind: str  # pg_proc.prokind: f function, a aggregate, w window, p procedure
    returns: str  # the return type's name (format_type)
    retset: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind
    definition: str = ""  # a view's SELECT (pg_get_viewdef)


@dataclass
class Catalog:
    """What the proof reads: loaded once per DDL epoch by `load`, pure data afterwards (unit tests build their own)."""

    functions: list[Function]
    relations: list[Relation]
    policies: dict[int, list[str]]  # relation oid -> its SELECT/ALL policies' USING expressions
    implicit: list[str] = field(default_factory=list)  # SQL expressions that run unnamed (domain checks)
    implicit_functions: list[int] = field(default_factory=list)  # user operators', casts', type I/O functions
    operators: frozenset[str] = frozenset()  # names of operators outside pg_catalog

    def __post_init__(self) -> None:
        self._functions: dict[str, list[Function]] = {}
        self._by_oid = {f.oid: f for f in self.functions}
        for fn in self.functions:
            self._functions.setdefault(fn.name, []).append(fn)
        self._relations: dict[str, list[Relation]] = {}
        self._relation_of = {r.oid: r for r in self.relations}
        for rel in self.relations:
            self._relations.setdefault(rel.name, []).append(rel)

    def functions_named(self, names: list[str]) -> list[Function]:
        *schema, name = names
        return [f for f in self._functions.get(name, ()) if not schema or f.schema == schema[-1]]

    def function(self, oid: int) -> Function | None:
        return self._by_oid.get(oid)

    def relations_named(self, names: list[str]) -> list[Relation]:
        *schema, name = names
        return [r for r in self._relations.get(name, ()) if not schema or r.schema == schema[-1]]

    def relation(self, oid: int) -> Relation | None:
        return self._relation_of.get(oid)


_LOAD_FUNCTIONS = """
select p.oid::int8, n.nspname::text, p.proname::text, l.lanname::text,
       case when l.lanname in ('internal', 'c') then '' else coalesce(p.prosrc, '') end, p.pronargs::int,
       p.prokind::text, format_type(p.prorettype, null), p.proretset
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
"""
_LOAD_RELATIONS = """
select c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
       case when c.relkind in ('v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
            then coalesce(pg_get_viewdef(c.oid), '') else '' end
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f')
"""
_LOAD_POLICIES = """
select polrelid::int8, coalesce(pg_get_expr(polqual, polrelid), '') from pg_policy where polcmd in ('r', '*')
"""
_LOAD_DOMAIN_CHECKS = """
select pg_get_expr(c.conbin, 0) from pg_constraint c where c.contypid <> 0 and c.conbin is not null
"""
# functions PostgreSQL calls without their name in the SQL: user operators, casts and type I/O
_LOAD_IMPLICIT = """
select o.oprcode::oid::int8 from pg_operator o join pg_proc p on p.oid = o.oprcode
where p.pronamespace <> 'pg_catalog'::regnamespace
union select c.castfunc::int8 from pg_cast c join pg_proc p on p.oid = c.castfunc
where p.pronamespace <> 'pg_catalog'::regnamespace
union select p.oid::int8 from pg_type t join pg_proc p
  on p.oid in (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, t.typsubscript)
where p.pronamespace <> 'pg_catalog'::regnamespace
"""
_LOAD_OPERATORS = "select distinct oprname::text from pg_operator where oprnamespace <> 'pg_catalog'::regnamespace"


async def load(conn: AsyncConnection[Any]) -> Catalog:
    """Read the catalog the proof needs (a few statements, ~10 ms; once per DDL epoch)."""
    cur = await conn.execute(_LOAD_FUNCTIONS)
    functions = [
        Function(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], bool(r[8])) for r in await cur.fetchall()
    ]
    cur = await conn.execute(_LOAD_RELATIONS)
    relations = [Relation(int(r[0]), r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]
    policies: dict[int, list[str]] = {}
    cur = await conn.execute(_LOAD_POLICIES)
    for oid, expr in await cur.fetchall():
        policies.setdefault(int(oid), []).append(str(expr))
    cur = await conn.execute(_LOAD_DOMAIN_CHECKS)
    implicit = [str(r[0]) for r in await cur.fetchall()]
    cur = await conn.execute(_LOAD_IMPLICIT)
    implicit_functions = [int(r[0]) for r in await cur.fetchall()]
    cur = await conn.execute(_LOAD_OPERATORS)
    operators = frozenset(str(r[0]) for r in await cur.fetchall())
    return Catalog(functions, relations, policies, implicit, implicit_functions, operators)


def _nodes(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Direct child nodes of a pglast JSON tree value, as (node type, body)."""
    if isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)
    elif isinstance(tree, dict):
        if len(tree) == 1:
            ((tag, body),) = tree.items()
            if isinstance(body, dict) and tag[:1].isupper():
                yield tag, body
                return
        for value in tree.values():
            yield from _nodes(value)


def _names(items: list[Any]) -> list[str]:
    return [item["String"]["sval"] for item in items if "String" in item]


def _string_const(node: Any) -> str | None:
    """The value of a string literal node (also cast to text, as `pg_get_expr` prints it), else None."""
    if isinstance(node, dict) and "TypeCast" in node:
        cast = node["TypeCast"]
        if _names(cast.get("typeName", {}).get("names", [])) not in (["text"], ["pg_catalog", "text"]):
            return None
        node = cast.get("arg")
    if isinstance(node, dict) and "A_Const" in node:
        sval = node["A_Const"].get("sval")
        if isinstance(sval, dict):
            return str(sval.get("sval", ""))
    return None


class Prover:
    """Footprints (claim keys read) of relations and functions over one `Catalog`; memoized, cycles allowed."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._functions: dict[int, frozenset[str] | Unproven] = {}
        self._relations: dict[int, frozenset[str] | Unproven] = {}
        self._sources: dict[int, bool] = {}
        self._global: frozenset[str] | Unproven | None = None

    def table(self, oid: int) -> frozenset[str] | None:
        """The claim keys a SELECT on relation `oid` can read, or None if that is not proven."""
        try:
            return self._implicit() | self._relation(oid)
        except Unproven:
            return None

    # what runs unnamed ------------------------------------------------------------------------------------------------

    def _implicit(self) -> frozenset[str]:
        if self._global is None:
            try:
                keys: set[str] = set()
                for expr in self.catalog.implicit:
                    keys |= self._expression(expr)
                for oid in self.catalog.implicit_functions:
                    fn = self.catalog.function(oid)
                    if fn is None:
                        raise Unproven(f"function {oid} not found")
                    keys |= self._function(fn)
                self._global = frozenset(keys)
            except Unproven as exc:
                self._global = exc
        if isinstance(self._global, Unproven):
            raise self._global
        return self._global

    # relations --------------------------------------------------------------------------------------------------------

    def _relation(self, oid: int) -> frozenset[str]:
        known = self._relations.get(oid)
        if isinstance(known, Unproven):
            raise known
        if known is not None:
            return known
        self._relations[oid] = frozenset()  # a cycle back here adds nothing new: the fixpoint of the union
        try:
            rel = self.catalog.relation(oid)
            keys: set[str] = set()
            if rel is not None and rel.schema == "information_schema":
                raise Unproven(f"reads information_schema.{rel.name}")  # views of SQL we do not load
            if rel is not None and rel.schema == "pg_catalog":
                if rel.name in DENIED_SYSTEM_RELATIONS:
                    raise Unproven(f"reads {rel.name}")
            elif rel is not None:
                for expr in self.catalog.policies.get(oid, ()):
                    if expr:
                        keys |= self._expression(expr)
                if rel.kind in ("v", "m"):
                    if not rel.definition:
                        raise Unproven(f"view {rel.schema}.{rel.name} without a definition")
                    keys |= self._statements(rel.definition)
            result = frozenset(keys)
        except Unproven as exc:
            self._relations[oid] = exc
            raise
        self._relations[oid] = result
        return result

    # functions --------------------------------------------------------------------------------------------------------

    def _function(self, fn: Function) -> frozenset[str]:
        known = self._functions.get(fn.oid)
        if isinstance(known, Unproven):
            raise known
        if known is not None:
            return known
        self._functions[fn.oid] = frozenset()  # recursion: the fixpoint of the union
        try:
            result = self._function_keys(fn)
        except Unproven as exc:
            self._functions[fn.oid] = exc
            raise
        self._functions[fn.oid] = result
        return result

    def _function_keys(self, fn: Function) -> frozenset[str]:
        if fn.schema == "pg_catalog" and fn.language in ("internal", "c"):
            if fn.name in DENIED_BUILTINS or DENIED_BUILTIN_PATTERN.search(fn.name):
                raise Unproven(f"calls {fn.name}")
            return frozenset()
        if fn.kind != "f":
            raise Unproven(f"{fn.schema}.{fn.name} is not a plain function")
        if fn.language != "sql":
            raise Unproven(f"{fn.schema}.{fn.name} is {fn.language}")
        if not fn.source.strip():  # a SQL-standard body (BEGIN ATOMIC) keeps no source text to parse
            raise Unproven(f"{fn.schema}.{fn.name} has no body text")
        if self._source(fn):
            return frozenset(self._source_keys(fn))
        return frozenset(self._statements(fn.source))

    def _source(self, fn: Function) -> bool:
        """Whether `fn` returns the claims whole: SQL, no arguments, one row, body `select <claims value>` only."""
        known = self._sources.get(fn.oid)
        if known is None:
            self._sources[fn.oid] = False  # while deciding: a self-reference is not a source
            known = self._sources[fn.oid] = self._source_target(fn) is not None
        return known

    def _source_target(self, fn: Function) -> Any:
        if fn.schema == "pg_catalog" or fn.language != "sql" or fn.kind != "f" or fn.nargs or fn.retset:
            return None
        if fn.returns not in CLAIMS_TYPES:
            return None
        try:
            stmts = json.loads(parser.parse_sql_json(fn.source)).get("stmts", [])
        except Exception:
            return None
        if len(stmts) != 1:
            return None
        select = stmts[0].get("stmt", {}).get("SelectStmt")
        if not isinstance(select, dict):
            return None
        if set(select) - {"targetList", "limitOption", "op"} or select.get("op") != "SETOP_NONE":
            return None
        targets = select.get("targetList", [])
        if len(targets) != 1:
            return None
        value = targets[0].get("ResTarget", {}).get("val")
        return value if self._claims_value(value) else None

    def _source_keys(self, fn: Function) -> set[str]:
        keys: set[str] = set()
        self._visit(self._source_target(fn), keys, consumed=True)
        return keys

    # SQL --------------------------------------------------------------------------------------------------------------

    def _statements(self, text: str) -> set[str]:
        try:
            tree = json.loads(parser.parse_sql_json(text))
        except Exception as exc:
            raise Unproven(f"does not parse: {exc}") from None
        keys: set[str] = set()
        for item in tree.get("stmts", []):
            stmt = item.get("stmt", {})
            select = stmt.get("SelectStmt")
            if select is None:
                raise Unproven(f"runs {next(iter(stmt), 'nothing')}")
            self._visit(stmt, keys)
        return keys

    def _expression(self, text: str) -> set[str]:
        return self._statements(f"select {text}")

    def _claims_value(self, node: Any) -> bool:
        """Whether `node` evaluates to the claims (or nothing), through the casts and wrappers a key read allows."""
        if not isinstance(node, dict) or len(node) != 1:
            return False
        ((tag, body),) = node.items()
        if tag == "FuncCall":
            return self._claims_call(body)
        if tag == "TypeCast":
            return self._claims_value(body.get("arg"))
        if tag == "A_Expr" and body.get("kind") == "AEXPR_NULLIF":
            return self._claims_value(body.get("lexpr"))
        if tag == "CoalesceExpr":
            return any(self._claims_value(arg) for arg in body.get("args", []))
        return False

    def _claims_call(self, body: dict[str, Any]) -> bool:
        names = _names(body.get("funcname", []))
        args = body.get("args", [])
        if names[-1:] == ["current_setting"] and names[:-1] in ([], ["pg_catalog"]):
            setting = _string_const(args[0]) if args else None
            return setting is not None and setting.lower() == CLAIMS_SETTING  # setting names ignore case
        if args:
            return False
        candidates = self.catalog.functions_named(names)
        return bool(candidates) and any(self._source(fn) for fn in candidates)

    def _visit(self, node: Any, keys: set[str], consumed: bool = False) -> None:
        """Add the claim keys `node` reads to `keys`; raise Unproven on anything else that could read the claims.

        `consumed`: `node` is the claims value of a key read (`<node> ->> 'key'`), so the claims may appear here.
        """
        for tag, body in _nodes(node):
            if tag in WRITES:
                raise Unproven(f"runs {tag}")
            if tag == "SelectStmt" and body.get("lockingClause"):
                raise Unproven("locks rows")
            if tag == "FuncCall":
                self._call(body, keys, consumed)
            elif tag == "A_Expr":
                self._operator(body, keys, consumed)
            elif tag == "TypeCast":
                if consumed:
                    typ = _names(body.get("typeName", {}).get("names", []))
                    if not typ or typ[-1] not in CLAIMS_TYPES or typ[:-1] not in ([], ["pg_catalog"]):
                        raise Unproven(f"casts the claims to {'.'.join(typ)}")
                self._visit(body.get("arg"), keys, consumed and self._claims_value(body.get("arg")))
                self._visit(body.get("typeName"), keys)
            elif tag == "CoalesceExpr" and consumed:
                for arg in body.get("args", []):
                    self._visit(arg, keys, self._claims_value(arg))
            elif tag == "RangeVar":
                names = [n for n in (body.get("schemaname"), body.get("relname")) if n]
                for rel in self.catalog.relations_named(names):
                    keys |= self._relation(rel.oid)
                self._visit({k: v for k, v in body.items() if k not in ("schemaname", "relname")}, keys)
            else:
                self._visit(body, keys)

    def _call(self, body: dict[str, Any], keys: set[str], consumed: bool) -> None:
        names = _names(body.get("funcname", []))
        args = body.get("args", [])
        rest = {k: v for k, v in body.items() if k not in ("funcname", "args")}
        if self._claims_call(body):
            if not consumed:
                raise Unproven(f"uses the claims whole ({'.'.join(names)})")
            for fn in self.catalog.functions_named(names):
                if fn.schema != "pg_catalog":
                    keys |= self._function(fn)
            self._visit(args, keys)
            self._visit(rest, keys)
            return
        if names[-1:] == ["current_setting"] and (not args or _string_const(args[0]) is None):
            raise Unproven("reads a setting whose name is not a literal")
        candidates = self.catalog.functions_named(names)
        if not candidates:
            raise Unproven(f"calls {'.'.join(names)}, which is not in the catalog")
        for fn in candidates:
            keys |= self._function(fn)
        self._visit(args, keys)
        self._visit(rest, keys)

    def _operator(self, body: dict[str, Any], keys: set[str], consumed: bool) -> None:
        names = _names(body.get("name", []))
        lexpr, rexpr = body.get("lexpr"), body.get("rexpr")
        if body.get("kind") == "AEXPR_NULLIF" and consumed:
            self._visit(lexpr, keys, self._claims_value(lexpr))
            self._visit(rexpr, keys)
            return
        key = _string_const(rexpr)
        if (
            body.get("kind") == "AEXPR_OP"
            and names[-1:]
            and names[-1] in KEY_OPERATORS
            and names[:-1] in ([], ["pg_catalog"])
            and key is not None
            and self._claims_value(lexpr)
        ):
            if self.catalog.operators & set(KEY_OPERATORS):
                raise Unproven("a user-defined -> or ->> operator exists")
            keys.add(key)
            self._visit(lexpr, keys, consumed=True)
            return
        self._visit(lexpr, keys)
        self._visit(rexpr, keys)
