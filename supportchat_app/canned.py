"""Canned replies, the pure part (no ``ui``): fuzzy ranking for the ``/`` picker and filling a reply's
variables.

Ranking uses rapidfuzz (C++): each keystroke scores the query against every reply's title (``WRatio``)
and the start of its body (``partial_ratio``), so "refnd" finds "Refund policy" and a word from the
middle of a body finds its reply — Chatwoot's picker only matches exact keywords. A shortcut the query
starts with wins outright. Over 1,000 replies one keystroke costs about a millisecond (bench
``canned_picker``).

Variables are ``{{name}}`` or ``{{name|fallback}}``. Known names are filled from the ticket:
``customer.name``, ``customer.first_name``, ``agent.name``, ``agent.first_name``, ``ticket.id`` (the
short id the header shows), ``ticket.subject``; an empty value takes the fallback. Any other name is a
fill-in field the agent is asked for (its fallback is the suggested answer), e.g. ``{{order number}}``.
Written by hand with one regular expression: template engines (Jinja, Mustache) either read ``|`` as a
filter or have no fallbacks, and none reports the unknown names as questions to ask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from sync.workspace_rows import CannedReply

VARIABLE = re.compile(r"\{\{\s*([^{}|]+?)\s*(?:\|([^{}]*))?\}\}")
KNOWN = ("customer.name", "customer.first_name", "agent.name", "agent.first_name", "ticket.id", "ticket.subject")
BODY_PREFIX = 400  # characters of a body the picker searches (a reply is recognised by its opening)
MIN_SCORE = 55.0


@dataclass(frozen=True)
class Field:
    """A fill-in field: its name as written and the suggested answer (the fallback, or empty)."""

    name: str
    default: str


def context_for(customer_name: str, agent_name: str, ticket_id: str, subject: str) -> dict[str, str]:
    """The known variables of a ticket."""
    return {
        "customer.name": customer_name.strip(),
        "customer.first_name": customer_name.strip().split(" ")[0] if customer_name.strip() else "",
        "agent.name": agent_name.strip(),
        "agent.first_name": agent_name.strip().split(" ")[0] if agent_name.strip() else "",
        "ticket.id": ticket_id[:8],
        "ticket.subject": subject,
    }


def fields(body: str) -> list[Field]:
    """The fill-in fields of a body, once each, in order of appearance."""
    seen: dict[str, Field] = {}
    for match in VARIABLE.finditer(body):
        name = match.group(1).strip()
        if name.lower() not in KNOWN and name not in seen:
            seen[name] = Field(name, (match.group(2) or "").strip())
    return list(seen.values())


def render(body: str, context: Mapping[str, str], answers: Mapping[str, str] | None = None) -> str:
    """The body with every variable filled: known ones from ``context``, fill-in fields from ``answers``;
    an empty value takes the fallback (and an empty fallback leaves nothing)."""
    answers = answers or {}

    def fill(match: re.Match[str]) -> str:
        name, fallback = match.group(1).strip(), (match.group(2) or "").strip()
        value = context.get(name.lower()) if name.lower() in KNOWN else answers.get(name)
        return value.strip() if value and value.strip() else fallback

    return VARIABLE.sub(fill, body)


class CannedIndex:
    """The replies prepared for ranking: built once per list, then searched per keystroke.

    Titles are scored whole (``partial_ratio``: "refnd" is close to "Refund policy"). Bodies go through
    an inverted index of their words: each query word is matched fuzzily against the vocabulary (a few
    thousand distinct words, not 1,000 long texts), and a reply scores by how well its words cover the
    query's. That keeps a keystroke near a millisecond where scoring every body is ten times slower."""

    def __init__(self, replies: Sequence[CannedReply]) -> None:
        self.replies = list(replies)
        self._titles = [utils.default_process(r.title) for r in self.replies]
        self._shortcuts = [(r.shortcut or "").lower() for r in self.replies]
        postings: dict[str, set[int]] = {}
        for i, reply in enumerate(self.replies):
            for word in utils.default_process(reply.body[:BODY_PREFIX]).split():
                if len(word) > 1:
                    postings.setdefault(word, set()).add(i)
        self._vocabulary = list(postings)
        self._postings = [postings[w] for w in self._vocabulary]

    def _body_scores(self, words: list[str]) -> dict[int, float]:
        """Per reply, the mean over the query's words of the best match among its body's words."""
        per_word: list[dict[int, float]] = []
        for word in words:
            best: dict[int, float] = {}
            for _, score, w in process.extract(
                word, self._vocabulary, scorer=fuzz.ratio, processor=None, limit=None, score_cutoff=70
            ):
                for i in self._postings[w]:
                    if score > best.get(i, 0.0):
                        best[i] = score
            per_word.append(best)
        if not per_word:
            return {}
        replies = set().union(*per_word)
        return {i: sum(b.get(i, 0.0) for b in per_word) / len(per_word) for i in replies}

    def search(self, query: str, limit: int = 8) -> list[CannedReply]:
        """The best ``limit`` replies for ``query`` (all in list order when it is empty)."""
        q = utils.default_process(query)
        if not q:
            return self.replies[:limit]
        scores: dict[int, float] = {}
        for _, score, i in process.extract(
            q, self._titles, scorer=fuzz.partial_ratio, processor=None, limit=None, score_cutoff=MIN_SCORE
        ):
            scores[i] = score + 5.0  # the title is what the agent remembers: it wins a tie
        words = [w for w in q.split() if len(w) > 1]
        for i, score in self._body_scores(words).items():
            if score * 0.9 >= MIN_SCORE:
                scores[i] = max(scores.get(i, 0.0), score * 0.9)
        first = q.split(" ")[0]
        for i, shortcut in enumerate(self._shortcuts):
            if shortcut and shortcut.startswith(first):
                scores[i] = 200.0 + (shortcut == first)
        ranked = sorted(scores, key=lambda i: (-scores[i], self._titles[i]))
        return [self.replies[i] for i in ranked[:limit]]
