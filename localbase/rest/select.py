"""PostgREST's `select=` grammar: columns, aliases, casts, JSON paths, embeddings, spreads and aggregates.

    select    = item ("," item)*
    item      = "*" | [alias ":"] field ["::" cast]                      a column or computed field
              | [alias ":"] [field "."] agg "()" ["::" cast]            count() / amount.sum() ...
              | [alias ":"] name ("!" hint | "!inner" | "!left")* "(" select? ")"     an embedding
              | "..." name ("!" hint)* "(" select? ")"                  a spread embedding
    `name()` with nothing inside is an empty embed: not in the output, there for `name=not.is.null` filters.

Parsed without I/O into plain data, bounded like the rest of the grammar (`grammar.check_nesting`:
the recursion below is at most `grammar.MAX_DEPTH` levels deep).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from localbase.rest.grammar import Field, GrammarError, check_nesting, parse_field, split_top, unquote

AggregateName = Literal["count", "sum", "avg", "min", "max"]
AGGREGATES: frozenset[str] = frozenset({"count", "sum", "avg", "min", "max"})
_CAST = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\])?")
_ALIAS = re.compile(r'^("(?:[^"\\]|\\.)*"|[^:"(]+):(?!:)')
_AGGREGATE = re.compile(r"^(?:(?P<field>.+)\.)?(?P<fn>count|sum|avg|min|max)\(\)(?:::(?P<cast>[A-Za-z0-9_\[\]]+))?$")


@dataclass(frozen=True)
class SelectColumn:
    field: Field
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class Star:
    pass


@dataclass(frozen=True)
class Aggregate:
    """`amount.sum()`, `count()`; the other selected columns become the GROUP BY."""

    function: AggregateName
    field: Field | None = None  # None only for count()
    alias: str | None = None
    cast: str | None = None  # of the result: `amount.sum()::int`
    input_cast: str | None = None  # of the column: `amount::int.sum()`


@dataclass(frozen=True)
class Embed:
    """`alias:relation!hint!inner(items)`, or `...relation(items)` (spread) — a related resource."""

    relation: str
    items: tuple[SelectItem, ...]
    alias: str | None = None
    hint: str | None = None
    inner: bool = False
    spread: bool = False


SelectItem = SelectColumn | Star | Embed | Aggregate


def parse_select(text: str) -> tuple[SelectItem, ...]:
    check_nesting(text, "select parameter")
    return _parse_select(text)


def _parse_select(text: str) -> tuple[SelectItem, ...]:
    text = _strip_spaces(text)
    if text == "":
        return (Star(),)
    return tuple(_select_item(part) for part in split_top(text))


def _strip_spaces(text: str) -> str:
    out: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch.isspace() and not quoted:
            continue
        out.append(ch)
    return "".join(out)


def _name(text: str, what: str) -> str:
    name = unquote(text.strip())
    if not name:
        raise GrammarError(f"failed to parse select parameter: empty {what} name")
    return name


def _check_cast(cast: str) -> str:
    if not _CAST.fullmatch(cast):
        raise GrammarError(f"failed to parse select parameter: bad cast {cast!r}")
    return cast


def _select_item(part: str) -> SelectItem:
    if part == "":
        raise GrammarError("failed to parse select parameter: empty item")
    if part == "*":
        return Star()
    alias: str | None = None
    # an alias is a leading name followed by a single ':' (not the '::' of a cast)
    m = _ALIAS.match(part)
    if m and not part.startswith("..."):
        alias = _name(m.group(1), "alias")
        part = part[m.end() :]
    spread = part.startswith("...")
    if spread:
        part = part[3:]
        if not (part.endswith(")") and "(" in part):
            raise GrammarError(f"failed to parse select parameter (...{part})", "only an embedding can be spread")
    agg = _AGGREGATE.match(part)
    if agg and not spread:
        return _aggregate(agg, alias)
    if part.endswith(")") and "(" in part:
        return _embed(part, alias, spread)
    if "(" in part or ")" in part:
        raise GrammarError(f"failed to parse select parameter ({part})", "unsupported select item")
    cast: str | None = None
    if "::" in part and not part.startswith('"'):
        part, _, cast = part.rpartition("::")
        _check_cast(cast)
    return SelectColumn(parse_field(part), alias, cast)


def _aggregate(m: re.Match[str], alias: str | None) -> Aggregate:
    fn = m.group("fn")
    cast = _check_cast(m.group("cast")) if m.group("cast") else None
    raw = m.group("field")
    if raw is None:
        if fn != "count":
            raise GrammarError(f"failed to parse select parameter ({fn}())", f"{fn}() needs a column, e.g. col.{fn}()")
        return Aggregate("count", None, alias, cast)
    input_cast: str | None = None
    if "::" in raw and not raw.startswith('"'):
        raw, _, input_cast = raw.rpartition("::")
        _check_cast(input_cast)
    name: AggregateName = fn  # type: ignore[assignment]  # the regex allows only these five
    return Aggregate(name, parse_field(raw), alias, cast, input_cast)


def _embed(part: str, alias: str | None, spread: bool) -> Embed:
    head, _, inner = part.partition("(")
    inner = inner[:-1]
    names = head.split("!")
    relation = _name(names[0], "relation")
    hint: str | None = None
    is_inner = False
    for extra in names[1:]:
        if extra == "inner":
            is_inner = True
        elif extra == "left":
            continue
        elif hint is None and extra:
            hint = unquote(extra)
        else:
            raise GrammarError(f"failed to parse select parameter: bad embedding {part!r}")
    items = _parse_select(inner) if inner else ()  # `rel()`: an empty embed, only for filtering
    return Embed(relation, items, alias, hint, is_inner, spread)
