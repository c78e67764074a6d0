"""A list of ids as ONE bound parameter: ``where id in (select value from json_each(?))`` with a JSON array.

An ``in (?, ?, …)`` list written with as many placeholders as ids is a different SQL text for every length, and
Python's ``sqlite3`` keeps a prepared statement per text (128 per connection, each 3-120 KB: a statement of 500
placeholders is the largest). A pull page, a push batch or a page of inbox rows comes in every length, so every
cache connection filled its statement cache with copies of the same few queries: in the soak (issue 15: 47 engines
in one process) SQLite's heap grew by ~10 MB in two minutes, nearly all of it these statements, while the page
caches stayed flat. One text per query keeps each connection's statements at one per query, whatever the length.
``json_each`` is SQLite's own (JSON1, built in since 3.38); the ``in`` over its rows still probes the table's index
once per id (checked with ``explain query plan``: ``SEARCH … USING INDEX … (id=?)``, ``LIST SUBQUERY``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

IN_LIST = "in (select value from json_each(?))"


def as_param(ids: Iterable[str]) -> str:
    """The ids as the JSON array ``IN_LIST``'s one parameter takes."""
    return json.dumps(list(ids))
