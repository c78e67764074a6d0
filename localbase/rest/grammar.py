"""PostgREST's URL and header grammar, parsed into plain data without any I/O.

Covers what supabase-py and supabase-js emit (the `select=` list is in `select.py`):
`<col>=[not.]<op>[(modifier)].<value>` filters, `or=(...)`/`and=(...)` trees, `order=`,
`columns=`, `on_conflict=`, `Prefer` and `Range` headers. Hand-written because no Python library
parses PostgREST's grammar; it is small, and keeping it pure lets it be unit tested exhaustively.
Every malformed input raises `GrammarError` (PGRST100, HTTP 400), never anything else.

Hostile input is bounded before any recursive descent: a parameter longer than `MAX_PARAM_CHARS` or
nested deeper than `MAX_DEPTH` (checked by one linear scan) is refused with a 400, so the recursion
below is at most `MAX_DEPTH` levels deep and each level rescans its text once: O(MAX_DEPTH * n) for
n ≤ MAX_PARAM_CHARS, a few milliseconds on the event loop at worst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPERATORS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "is",
        "in",
        "match",
        "imatch",
        "cs",
        "cd",
        "ov",
        "sl",
        "sr",
        "nxl",
        "nxr",
        "adj",
        "fts",
        "plfts",
        "phfts",
        "wfts",
        "isdistinct",
    }
)
QUANTIFIABLE = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
FTS_OPERATORS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
# names of the query string that are not filters
RESERVED_PARAMS = frozenset(
    {"select", "order", "limit", "offset", "columns", "on_conflict", "or", "and", "not.or", "not.and", "apikey"}
)
_JSON_ARROW = re.compile(r"->>?")
# Embeddings and logic trees nest a handful of levels in real code; PostgREST has no documented cap, but
# unbounded nesting is how one request froze the server (issue 10), so deeper input is a 400.
MAX_DEPTH = 16
MAX_PARAM_CHARS = 32 * 1024  # the server's URL limit (localbase.limits) is lower by default


class GrammarError(ValueError):
    """A request the grammar cannot parse; carries PostgREST's PGRST100 fields."""

    def __init__(self, message: str, details: str | None = None, code: str = "PGRST100") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.code = code


@dataclass(frozen=True)
class Field:
    """A column, optionally followed by a JSON path: `data->a->>b` is name=data, path=(('->','a'),('->>','b'))."""

    name: str
    path: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str
    value: str | tuple[str, ...]  # a tuple for `in`
    negate: bool = False
    modifier: str | None = None  # fts language, or the any/all quantifier


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    children: tuple[Condition | Logic, ...]
    negate: bool = False


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    desc: bool = False
    nulls: str | None = None  # "first" | "last"
    relation: str | None = None  # `order=directors(last_name)`: a column of a to-one embedding


@dataclass
class Prefer:
    return_: str = "minimal"
    count: str | None = None
    resolution: str | None = None
    missing_default: bool = False
    handling_strict: bool = False
    max_affected: int | None = None
    explicit_return: bool = False
    applied: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # unknown or unfulfillable: an error with handling=strict


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise GrammarError("Invalid input", "NUL characters are not allowed in the query string")
    if len(text) > MAX_PARAM_CHARS:
        raise GrammarError(
            "failed to parse: parameter too long", f"a parameter may have at most {MAX_PARAM_CHARS} characters"
        )


def check_nesting(text: str, what: str) -> None:
    """Refuse unbalanced or too deeply nested parentheses in one linear pass, before any recursion."""
    _check_text(text)
    depth = 0
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise GrammarError(
                    f"failed to parse {what} ({_excerpt(text)})", f"nested more than {MAX_DEPTH} levels deep"
                )
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if quoted or depth != 0:
        raise GrammarError(f"failed to parse {what} ({_excerpt(text)})", "unbalanced quotes or parentheses")


def _excerpt(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside double quotes and parentheses (backslash escapes inside quotes)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
            continue
        if quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch in "({":  # braces: array literals like {a,b} in cs/cd/ov values
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise GrammarError(f"failed to parse: unbalanced parentheses in ({_excerpt(text)})")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quoted or depth != 0:
        raise GrammarError(f"failed to parse: unbalanced quotes or parentheses in ({_excerpt(text)})")
    parts.append(text[start:])
    return parts


def unquote(text: str) -> str:
    """`"a\\"b"` → `a"b`; unquoted text is returned as is."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        out: list[str] = []
        escaped = False
        for ch in text[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return text


def _name(text: str, what: str = "column") -> str:
    name = unquote(text.strip())
    if not name:
        raise GrammarError(f"failed to parse: empty {what} name")
    return name


def parse_field(text: str) -> Field:
    """`col`, `"a col"`, `data->key->>leaf`, `data->0`."""
    _check_text(text)
    if text.startswith('"'):
        end = _closing_quote(text)
        head, rest = text[: end + 1], text[end + 1 :]
    else:
        m = _JSON_ARROW.search(text)
        head, rest = (text[: m.start()], text[m.start() :]) if m else (text, "")
    name = _name(head)
    path: list[tuple[str, str]] = []
    while rest:
        m = re.match(r"(->>?)", rest)
        if not m:
            raise GrammarError(f"failed to parse field {text!r}")
        arrow = m.group(1)
        rest = rest[len(arrow) :]
        nxt = _JSON_ARROW.search(rest) if not rest.startswith('"') else None
        if rest.startswith('"'):
            end = _closing_quote(rest)
            key, rest = unquote(rest[: end + 1]), rest[end + 1 :]
        elif nxt:
            key, rest = rest[: nxt.start()], rest[nxt.start() :]
        else:
            key, rest = rest, ""
        if key == "":
            raise GrammarError(f"failed to parse field {text!r}: empty JSON key")
        path.append((arrow, key))
    return Field(name, tuple(path))


def _closing_quote(text: str) -> int:
    escaped = False
    for i in range(1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    raise GrammarError(f"failed to parse: unterminated quote in {text!r}")


# filters -----------------------------------------------------------------------------------------


def parse_condition(key: str, value: str) -> Condition:
    """`key=value` of the query string, e.g. `status=not.in.(open,closed)`."""
    _check_text(key)
    _check_text(value)
    return _operation(parse_field(key), value, in_logic=False)


def _operation(fld: Field, text: str, *, in_logic: bool) -> Condition:
    negate = False
    if text.startswith("not."):
        negate = True
        text = text[4:]
    op, dot, rest = text.partition(".")
    if not dot:
        raise GrammarError(f"failed to parse filter ({text})", f"missing operator or value in {text!r}")
    modifier: str | None = None
    m = re.fullmatch(r"([a-z]+)\(([A-Za-z0-9_]+)\)", op)
    if m:
        op, modifier = m.group(1), m.group(2)
        if op in FTS_OPERATORS:
            pass
        elif op in QUANTIFIABLE and modifier in ("any", "all"):
            pass
        else:
            raise GrammarError(f"failed to parse filter ({text})", f"modifier {modifier!r} not allowed on {op}")
    if op not in OPERATORS:
        raise GrammarError(f"failed to parse filter ({text})", f"unknown operator {op!r}")
    if op == "in" or modifier in ("any", "all"):
        values = _list_value(rest, op)
        return Condition(fld, op, values, negate, modifier)
    if op == "is":
        if rest.lower() not in IS_VALUES:
            raise GrammarError(
                f"failed to parse filter (is.{rest})", "is accepts null, not_null, true, false or unknown"
            )
        return Condition(fld, op, rest.lower(), negate)
    if in_logic:
        rest = unquote(rest)
    if op in ("like", "ilike"):
        rest = rest.replace("*", "%")
    return Condition(fld, op, rest, negate, modifier)


def _list_value(text: str, op: str) -> tuple[str, ...]:
    if op == "in":
        if not (text.startswith("(") and text.endswith(")")):
            raise GrammarError(f"failed to parse filter (in.{text})", "in needs a list like (a,b)")
        body = text[1:-1]
    else:
        if not (text.startswith("{") and text.endswith("}")):
            raise GrammarError(f"failed to parse filter ({op}.{text})", "any/all need a list like {a,b}")
        body = text[1:-1]
    if body == "":
        return ()
    values = [unquote(v) for v in split_top(body)]
    if op in ("like", "ilike"):
        values = [v.replace("*", "%") for v in values]
    return tuple(values)


def parse_logic(key: str, value: str) -> Logic:
    """`or=(a.eq.1,not.and(b.gt.2,b.lt.5))`, key `or`/`and`/`not.or`/`not.and`."""
    check_nesting(value, "logic tree")
    negate = key.startswith("not.")
    op = key[4:] if negate else key
    if not (value.startswith("(") and value.endswith(")")):
        raise GrammarError(f"failed to parse logic tree ({value})", f"{op} needs a parenthesised list")
    return Logic(op, _logic_children(value[1:-1]), negate)


def _logic_children(body: str) -> tuple[Condition | Logic, ...]:
    children: list[Condition | Logic] = []
    for raw in split_top(body):
        item = raw.strip()
        m = re.match(r"^(not\.)?(and|or)\(", item)
        if m and item.endswith(")"):
            children.append(Logic(m.group(2), _logic_children(item[m.end() : -1]), bool(m.group(1))))
            continue
        if item.startswith('"'):
            end = _closing_quote(item)
            fld_text, rest = item[: end + 1], item[end + 1 :]
            while rest.startswith("->"):
                nxt = rest.find(".")
                if nxt < 0:
                    break
                fld_text, rest = fld_text + rest[:nxt], rest[nxt:]
            if not rest.startswith("."):
                raise GrammarError(f"failed to parse logic tree ({body})")
            rest = rest[1:]
        else:
            fld_text, dot, rest = item.partition(".")
            if not dot:
                raise GrammarError(f"failed to parse logic tree ({body})", f"bad condition {item!r}")
        children.append(_operation(parse_field(fld_text), rest, in_logic=True))
    if not children:
        raise GrammarError("failed to parse logic tree ()", "empty logic tree")
    return tuple(children)


# order, columns, ranges, prefer ---------------------------------------------------------------------


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    _check_text(text)
    terms: list[OrderTerm] = []
    for raw in split_top(text):
        if raw == "":
            raise GrammarError(f"failed to parse order ({text})", "empty order term")
        parts = raw.split(".")
        mods: list[str] = []
        while len(parts) > 1 and parts[-1] in ("asc", "desc", "nullsfirst", "nullslast"):
            mods.insert(0, parts.pop())
        head = ".".join(parts)
        related = re.fullmatch(r"([^()\"]+)\(([^()]+)\)", head)
        relation = related.group(1) if related else None
        fld = parse_field(related.group(2) if related else head)
        desc = "desc" in mods
        nulls = "first" if "nullsfirst" in mods else "last" if "nullslast" in mods else None
        if len(mods) > 2 or ("asc" in mods and desc) or ("nullsfirst" in mods and "nullslast" in mods):
            raise GrammarError(f"failed to parse order ({raw})")
        terms.append(OrderTerm(fld, desc, nulls, relation))
    return tuple(terms)


def parse_names(text: str) -> tuple[str, ...]:
    """`columns="a","b"` or `on_conflict=a,b`."""
    _check_text(text)
    names = tuple(_name(part) for part in split_top(text.strip()))
    return names


def parse_nonneg_int(text: str, what: str) -> int:
    if not re.fullmatch(r"\d{1,18}", text.strip()):
        raise GrammarError(f"failed to parse {what} parameter ({text})", f"{what} must be a non-negative integer")
    return int(text)


def parse_range(header: str | None) -> tuple[int, int | None] | None:
    """`Range: 0-9` → (0, 9); `10-` → (10, None); anything else is ignored, as PostgREST does."""
    if not header:
        return None
    m = re.fullmatch(r"\s*(?:items=)?(\d{1,18})-(\d{0,18})\s*", header)
    if not m:
        return None
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else None
    if hi is not None and hi < lo:
        return None
    return lo, hi


def parse_prefer(values: list[str]) -> Prefer:
    """Every `Prefer` header, each a comma list; unknown preferences are ignored, or with `handling=strict`
    refused (PGRST122), as PostgREST does. `tx=commit|rollback` is ignored as PostgREST ignores it under its default
    `db-tx-end = "commit"` (Supabase's, which allows no override): every request commits, `Preference-Applied`
    never names it, and it is no invalid preference (PostgREST's `fromHeaders` with `configDbTxAllowOverride`
    false)."""
    prefer = Prefer()
    for header in values:
        for raw in header.split(","):
            item = raw.strip()
            if not item:
                continue
            key, _, val = item.partition("=")
            key, val = key.strip().lower(), val.strip()
            if key == "return" and val in ("representation", "minimal", "headers-only"):
                prefer.return_ = val
                prefer.explicit_return = True
            elif key == "count" and val in ("exact", "planned", "estimated"):
                prefer.count = val
            elif key == "resolution" and val in ("merge-duplicates", "ignore-duplicates"):
                prefer.resolution = val
            elif key == "missing" and val == "default":
                prefer.missing_default = True
            elif key == "tx" and val in ("rollback", "commit"):
                continue  # known, so never PGRST122, but not applied: Supabase keeps db-tx-end=commit (no override)
            elif key == "handling" and val in ("strict", "lenient"):
                prefer.handling_strict = val == "strict"
            elif key == "max-affected":
                prefer.max_affected = parse_nonneg_int(val, "max-affected")
            else:
                prefer.invalid.append(item)
                continue
            prefer.applied.append(f"{key}={val}")
    if prefer.handling_strict and prefer.invalid:
        raise GrammarError(
            "Invalid preferences given with handling=strict",
            "Invalid preferences: " + ", ".join(prefer.invalid)[:500],
            code="PGRST122",
        )
    return prefer
