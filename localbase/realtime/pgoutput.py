"""A parser for PostgreSQL's `pgoutput` logical decoding messages (protocol version 1).

The capture reads them with `pg_logical_slot_get_binary_changes(slot, NULL, N, 'proto_version', '1',
'publication_names', 'supabase_realtime')`: one message per row. Only the messages that protocol
version 1 without streaming can produce are handled: Begin, Commit, Relation, Type, Origin, Insert,
Update, Delete, Truncate (and logical Messages, which we skip). Tuple values arrive in PostgreSQL's
text output format; the capture turns them into typed JSON inside PostgreSQL (see capture.py).

Hand-written: psycopg 3 has no replication-protocol support and the format is a few fixed layouts
documented in "Logical Replication Message Formats".
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# a tuple column: None = SQL NULL, UNCHANGED = an unchanged TOASTed value the message does not carry
UNCHANGED = object()
TupleValue = str | None | object


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass
class Change:
    """One row change: `kind` is INSERT, UPDATE or DELETE; `old` is the key (or full) old tuple if sent."""

    kind: str
    relation_oid: int
    new: list[TupleValue] | None = None
    old: list[TupleValue] | None = None
    old_is_key_only: bool = False


@dataclass
class Transaction:
    xid: int
    commit_time: dt.datetime
    changes: list[Change] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def byte(self) -> str:
        value = chr(self.data[self.pos])
        self.pos += 1
        return value

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def tuple_data(self) -> list[TupleValue]:
        count = self.take("!h")
        values: list[TupleValue] = []
        for _ in range(count):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind in ("t", "b"):
                length = self.take("!i")
                raw = self.data[self.pos : self.pos + length]
                self.pos += length
                values.append(raw.decode("utf-8") if kind == "t" else raw.hex())
            else:
                raise ValueError(f"unknown tuple column kind {kind!r}")
        return values


def _timestamp(micros: int) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=micros)


class Decoder:
    """Feeds pgoutput messages in order; yields each transaction at its Commit, relations are remembered."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self._current: Transaction | None = None

    def feed(self, message: bytes) -> Transaction | None:
        r = _Reader(message)
        tag = r.byte()
        if tag == "B":
            r.take("!q")  # final LSN
            commit_time = _timestamp(r.take("!q"))
            self._current = Transaction(r.take("!I"), commit_time)
        elif tag == "C":
            done, self._current = self._current, None
            return done
        elif tag == "R":
            oid = r.take("!I")
            schema, name = r.cstring(), r.cstring()
            identity = r.byte()
            columns = []
            for _ in range(r.take("!h")):
                flags = r.take("!B")
                col_name = r.cstring()
                type_oid = r.take("!I")
                r.take("!i")  # typmod
                columns.append(Column(col_name, type_oid, bool(flags & 1)))
            self.relations[oid] = Relation(oid, schema, name, identity, tuple(columns))
        elif tag in ("I", "U", "D") and self._current is not None:
            self._current.changes.append(self._change(tag, r))
        # Y (type), O (origin), T (truncate), M (message) carry nothing Supabase Realtime delivers
        return None

    @staticmethod
    def _change(tag: str, r: _Reader) -> Change:
        oid = r.take("!I")
        if tag == "I":
            r.byte()  # 'N'
            return Change("INSERT", oid, new=r.tuple_data())
        marker = r.byte()
        old: list[TupleValue] | None = None
        key_only = False
        if marker in ("K", "O"):
            key_only = marker == "K"
            old = r.tuple_data()
            if tag == "U":
                marker = r.byte()
        if tag == "U":
            return Change("UPDATE", oid, new=r.tuple_data(), old=old, old_is_key_only=key_only)
        return Change("DELETE", oid, old=old, old_is_key_only=key_only)
