"""Which postgres_changes channels a change goes to: its table and event, then the bindings' row filters.

A `Matcher` keeps, per (schema, table, event kind), a `Plan`: the bindings a change is matched against, worked out
once while the set of postgres_changes channels stays the same (`hub.ChannelSet.version`) and again as soon as it
changes (a join, a leave). Before, the capture rebuilt the bindings' index and the candidates for every batch and
matched each candidate on its own, ~18 % of the stack's time at 500 subscribers.

Conditions with equal keys (the same filter, typed the same at join) give every record the same verdict
(filters.Condition.key), so the plan groups the bindings by them: per change each distinct filter is asked once and
its channels' targets, prebuilt, are appended. That needs each channel to have at most one candidate binding; a
channel with several (two bindings on one table) keeps the per-change path, which gathers its binding ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localbase.realtime.filters import Binding, Condition
from localbase.realtime.hub import Channel, ChannelSet

Verdicts = dict[tuple[str, str, str, str], bool]  # condition key -> whether the change's record meets it
Targets = list[tuple[Channel, list[int]]]  # channels and the ids of their bindings a change matched
Index = tuple[dict[tuple[str, str], list[tuple[Channel, Binding]]], list[tuple[Channel, Binding]]]


def matches(conditions: list[Condition], subject: dict[str, Any], verdicts: Verdicts) -> bool:
    """Every condition holds for `subject`; a typed condition's verdict is asked once per change (by its key)."""
    for cond in conditions:
        key = cond.key
        if key is None:
            verdict = cond.matches(subject)
        else:
            known = verdicts.get(key)
            verdict = verdicts[key] = cond.matches(subject) if known is None else known
        if not verdict:
            return False
    return True


@dataclass
class Plan:
    """The bindings one table's changes of one kind are matched against."""

    candidates: list[tuple[Channel, Binding]]
    # (conditions, the targets they let through) per distinct filter, in the candidates' order; None when a channel
    # has several candidates (matched one by one, its ids gathered per change)
    groups: list[tuple[list[Condition], Targets]] | None

    def targets(self, subject: dict[str, Any]) -> Targets:
        """The channels (with their matched binding ids) whose bindings `subject`, the change's record, meets.

        The ids lists may be shared with other changes' targets: callers never change them."""
        verdicts: Verdicts = {}  # per change: one verdict per distinct condition
        if self.groups is not None:
            targets: Targets = []
            for conditions, entries in self.groups:
                if not conditions or matches(conditions, subject, verdicts):
                    targets += entries
            return targets
        ids_of: dict[Channel, list[int]] = {}
        for channel, binding in self.candidates:
            if not binding.conditions or matches(binding.conditions, subject, verdicts):
                ids = ids_of.setdefault(channel, [])
                if binding.id not in ids:
                    ids.append(binding.id)
        return list(ids_of.items())


class Matcher:
    """The plans for the channels of one `ChannelSet`, remade whenever the set changes."""

    def __init__(self, channels: ChannelSet) -> None:
        self.channels = channels
        self._plans: dict[tuple[str, str, str], Plan] = {}  # (schema, table, kind) -> its plan
        self._version = -1  # the channels' version the plans were made for
        self._index: Index = ({}, [])

    def index(self) -> Index:
        """Bindings by (schema, table), plus those that name no table or schema '*' (checked against every table)."""
        exact: dict[tuple[str, str], list[tuple[Channel, Binding]]] = {}
        loose: list[tuple[Channel, Binding]] = []
        for channel in self.channels:
            for binding in channel.bindings:
                if binding.table is None or binding.schema == "*":
                    loose.append((channel, binding))
                else:
                    exact.setdefault((binding.schema, binding.table), []).append((channel, binding))
        return exact, loose

    def plan(self, schema: str, table: str, kind: str) -> Plan:
        """What a change of this kind to this table is matched against, kept until the channels change."""
        if self._version != self.channels.version:
            self._plans = {}
            self._index = self.index()
            self._version = self.channels.version
        plan = self._plans.get((schema, table, kind))
        if plan is not None:
            return plan
        exact, loose = self._index
        candidates = [(ch, b) for ch, b in exact.get((schema, table), ()) if b.event in ("*", kind)]
        candidates += [(ch, b) for ch, b in loose if b.schema in ("*", schema) and b.wants(kind)]
        groups: list[tuple[list[Condition], Targets]] | None = None
        if len({ch for ch, _ in candidates}) == len(candidates):
            groups = []
            by_key: dict[object, tuple[list[Condition], Targets]] = {}
            for channel, binding in candidates:
                conditions = binding.conditions
                keys = tuple(c.key for c in conditions)
                key: object = keys if None not in keys else id(binding)  # an unkeyed condition: asked for itself
                group = by_key.get(key)
                if group is None:
                    group = by_key[key] = (conditions, [])
                    groups.append(group)
                group[1].append((channel, [binding.id]))
        plan = self._plans[(schema, table, kind)] = Plan(candidates, groups)
        return plan
