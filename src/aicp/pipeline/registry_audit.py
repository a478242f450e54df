"""The registry's audit log: one hash chain over every record, and what rollback reads.

Each record's hash is SHA-256 over the previous record's hash (hex; 64 zeros
for the first) followed by the RFC 8785 canonical JSON of its fields
`time, actor, action, registered_model, version, previous_version, alias, data`.
The chain runs through the whole table in `seq` order (all models), so a
record removed, changed or inserted anywhere breaks every later link.

Production history, replayed from a model's promote and rollback records:
a stack of the versions that went to production, in order, and the set of
versions rolled back from. A promote pushes its version (and clears it from
the rolled-back set: promoting it again by hand is a decision to trust it).
A rollback marks the current version as rolled back from and pops the stack
down to the version it went to. The rollback target is the nearest version
down the stack that is not the current one, was not rolled back from, and
still exists in MLflow; a second rollback therefore goes further back, and a
version once rolled back from is never chosen again by rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from sqlalchemy import Connection, insert, select

from aicp.errors import AuditChainBroken, RegistryError
from aicp.storage.db import plain_row
from aicp.storage.schema import registry_audit

GENESIS = "0" * 64

#: The fields a record's hash covers, in the canonical object.
HASHED = (
    "time",
    "actor",
    "action",
    "registered_model",
    "version",
    "previous_version",
    "alias",
    "data",
)

#: Actions that move the production alias.
MOVES = ("promote", "rollback")


def record_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    body = {k: record[k] for k in HASHED}
    try:
        canonical = rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise RegistryError(f"audit record is not canonical JSON: {exc}") from None
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def append(conn: Connection, record: Mapping[str, Any]) -> dict[str, Any]:
    """Add a record after the chain's last one (the caller holds the write lock)."""
    last = conn.execute(
        select(registry_audit.c.hash).order_by(registry_audit.c.seq.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = last or GENESIS
    row = {k: record[k] for k in HASHED}
    row.update(prev_hash=prev_hash, hash=record_hash(prev_hash, row))
    seq = conn.execute(insert(registry_audit).values(**row)).inserted_primary_key
    return {"seq": seq[0] if seq else None, **row}


def check(conn: Connection) -> int:
    """Recompute the chain; the number of records, or AuditChainBroken at the first bad one."""
    prev_hash = GENESIS
    count = 0
    rows = conn.execute(select(registry_audit).order_by(registry_audit.c.seq))
    for row in map(plain_row, rows):
        if row["prev_hash"] != prev_hash:
            raise AuditChainBroken(
                f"audit record {row['seq']}: link to its predecessor broken", row["seq"]
            )
        if record_hash(prev_hash, row) != row["hash"]:
            raise AuditChainBroken(
                f"audit record {row['seq']}: hash does not match its content", row["seq"]
            )
        prev_hash = row["hash"]
        count += 1
    return count


def records(conn: Connection, model: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(registry_audit)
        .where(registry_audit.c.registered_model == model)
        .order_by(registry_audit.c.seq)
    )
    return [plain_row(r) for r in rows]


@dataclass(slots=True)
class Production:
    """A model's production history as replayed from its audit records."""

    stack: list[str] = field(default_factory=list)
    rolled_back: set[str] = field(default_factory=set)

    @classmethod
    def replay(cls, history: Iterable[Mapping[str, Any]]) -> Production:
        state = cls()
        for rec in history:
            if rec["action"] in MOVES and rec["version"] is not None:
                state.apply(rec["action"], str(rec["version"]), rec["previous_version"])
        return state

    def apply(self, action: str, version: str, previous: str | None) -> None:
        if action == "promote":
            self.rolled_back.discard(version)
            if not self.stack or self.stack[-1] != version:
                self.stack.append(version)
            return
        if previous is not None:
            self.rolled_back.add(previous)
        while self.stack and self.stack[-1] != version:
            self.stack.pop()
        if not self.stack:
            self.stack.append(version)

    def target(self, current: str | None, exists: Callable[[str], bool]) -> str | None:
        """The version a rollback from `current` goes to (None: nothing to go back to)."""
        skip = set(self.rolled_back)
        if current is not None:
            skip.add(current)
        for version in reversed(self.stack):
            if version not in skip and exists(version):
                return version
        return None
