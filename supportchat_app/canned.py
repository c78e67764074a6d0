"""Canned replies, the pure part (no ``ui``): fuzzy ranking for the ``/`` picker and filling a reply's
variables.

Ranking uses rapidfuzz (C++): each query word is matched fuzzily against the words of the replies' titles
and bodies, so "refnd" finds "Refund policy" and a word from a body finds its reply — Chatwoot's picker only
matches exact keywords. A shortcut the query starts with wins outright. Over 1,000 replies one keystroke
costs a few milliseconds (bench ``canned_picker``).

Variables are ``{{name}}`` or ``{{name|fallback}}``. Known names are filled from the ticket:
``customer.name``, ``customer.first_name``, ``agent.name``, ``agent.first_name``, ``ticket.id`` (the
short id the header shows), ``ticket.subject``; an empty value takes the fallback. Any other name is a
fill-in field the agent is asked for (its fallback is the suggested answer), e.g. ``{{order number}}``.
Written by hand with one regular expression: template engines (Jinja, Mustache) either read ``|`` as a
filter or have no fallbacks, and none reports the unknown names as questions to ask.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from sync.models import Ticket
from sync.workspace_rows import CannedReply

VARIABLE = re.compile(r"\{\{\s*([^{}|]+?)\s*(?:\|([^{}]*))?\}\}")
KNOWN = ("customer.name", "customer.first_name", "agent.name", "agent.first_name", "ticket.id", "ticket.subject")
BODY_PREFIX = 400  # characters of a body the picker searches (a reply is recognised by its opening)
MIN_SCORE = 55.0  # a reply below this is not shown
WORD_SCORE = 75.0  # how close a query word and a reply's word must be to count as a match
SHORT_PREFIX = 3  # a word being typed this short matches the words it starts, not fuzzily


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


def ticket_render(agent_name: str, ticket_of: Callable[[str], Ticket | None]) -> Callable[[str, str], str]:
    """Fills a macro's reply for each ticket it is applied to, as the ``/`` picker fills a canned reply: the
    known variables from that ticket; a fill-in field, which no one is asked for when a macro runs (on many
    tickets at once too), takes its fallback or nothing."""

    def render_for(body: str, ticket_id: str) -> str:
        ticket = ticket_of(ticket_id)
        customer, subject = (ticket.customer_name, ticket.subject) if ticket is not None else ("", "")
        return render(body, context_for(customer, agent_name, ticket_id, subject))

    return render_for


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


class _WordIndex:
    """Which replies hold which words, for matching the query's words fuzzily against the vocabulary (a few
    thousand distinct words) instead of against 1,000 long texts."""

    def __init__(self, texts: Sequence[str]) -> None:
        postings: dict[str, set[int]] = {}
        for i, text in enumerate(texts):
            for word in utils.default_process(text).split():
                if len(word) > 1:
                    postings.setdefault(word, set()).add(i)
        self.vocabulary = sorted(postings)  # sorted: the words a short prefix starts are one slice of it
        self.postings = [postings[w] for w in self.vocabulary]

        self._best: dict[tuple[str, bool], dict[int, float]] = {}  # per query word (and prefix or not)

    def best(self, word: str, prefix: bool) -> dict[int, float]:
        """Per reply, the score of its word closest to ``word`` (those at least WORD_SCORE). Remembered: while a
        query is typed its finished words come back at every keystroke, and only the last one is new."""
        key = (word, prefix)
        found = self._best.get(key)
        if found is None:
            if len(self._best) > 512:  # one picker session's words; a bound, not a policy
                self._best.clear()
            found = {}
            for score, w in self._matches(word, prefix):
                for i in self.postings[w]:
                    if score > found.get(i, 0.0):
                        found[i] = score
            self._best[key] = found
        return found

    def _matches(self, word: str, prefix: bool) -> list[tuple[float, int]]:
        """(score, vocabulary index) of the words close to ``word``. A last word of up to SHORT_PREFIX letters
        is the start of a word: the words it starts (one slice of the sorted vocabulary; fuzzily, "re" matched
        a quarter of all words, and walking their replies was most of a keystroke's time)."""
        if prefix and len(word) <= SHORT_PREFIX:
            start = bisect.bisect_left(self.vocabulary, word)
            end = bisect.bisect_left(self.vocabulary, word + "\uffff", start)
            return [(100.0, w) for w in range(start, end)]
        scorer = fuzz.partial_ratio if prefix else fuzz.ratio
        found = process.extract(
            word, self.vocabulary, scorer=scorer, processor=None, limit=None, score_cutoff=WORD_SCORE
        )
        return [(score, w) for _, score, w in found]

    def cover(self, words: Sequence[str]) -> dict[int, float]:
        """Per reply, the mean over ``words`` of its best-matching word's score (0 to 100). The last word is
        still being typed, so it matches as a prefix too ("dam" → "damaged")."""
        per_word = [self.best(word, n == len(words) - 1) for n, word in enumerate(words)]
        if not per_word:
            return {}
        totals: dict[int, float] = {}
        for best in per_word:
            for i, score in best.items():
                totals[i] = totals.get(i, 0.0) + score
        count = len(per_word)
        return {i: total / count for i, total in totals.items()}


class CannedIndex:
    """The replies prepared for ranking: built once when the picker opens, then searched per keystroke.

    A reply scores by how well its title's words cover the query's words (ahead on a tie: the title is what
    the agent remembers), or its body's (the opening ``BODY_PREFIX`` characters) slightly less; a shortcut
    the query starts with wins outright. One keystroke over 1,000 replies stays within a few milliseconds
    (bench ``canned_picker``); scoring every whole text with a fuzzy scorer was ten times slower."""

    def __init__(self, replies: Sequence[CannedReply]) -> None:
        self.replies = list(replies)
        self._titles = [utils.default_process(r.title) for r in self.replies]
        self._shortcuts = [(r.shortcut or "").lower() for r in self.replies]
        self._title_words = _WordIndex([r.title for r in self.replies])
        self._body_words = _WordIndex([r.body[:BODY_PREFIX] for r in self.replies])

    def search(self, query: str, limit: int = 8) -> list[CannedReply]:
        """The best ``limit`` replies for ``query`` (all in list order when it is empty)."""
        q = utils.default_process(query)
        if not q:
            return self.replies[:limit]
        words = [w for w in q.split() if len(w) > 1]
        scores: dict[int, float] = {}
        if not words:  # one letter: titles starting with it
            scores = {i: 100.0 for i, title in enumerate(self._titles) if title.startswith(q)}
        for i, score in self._title_words.cover(words).items():
            if score >= MIN_SCORE:
                scores[i] = score + 5.0
        for i, score in self._body_words.cover(words).items():
            if score * 0.9 >= MIN_SCORE and score * 0.9 > scores.get(i, 0.0):
                scores[i] = score * 0.9
        first = q.split(" ")[0]
        for i, shortcut in enumerate(self._shortcuts):
            if shortcut and shortcut.startswith(first):
                scores[i] = 200.0 + (shortcut == first)
        best = sorted(scores, key=lambda i: -scores[i])[: limit * 4]
        best.sort(key=lambda i: (-scores[i], self._titles[i]))
        return [self.replies[i] for i in best[:limit]]
