"""Verification: one exported receipt offline, or the whole log against its checkpoints.

Neither trusts what the writer computed: leaf hashes are recomputed from the
receipt's canonical form by the independent `rfc8785` encoder, proofs are
checked with RFC 9162's verification algorithms (not by rebuilding the tree
with the code that wrote it), and checkpoints by their Ed25519 signature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aicp.receipts import merkle
from aicp.receipts.canonical import reference
from aicp.receipts.signing import Checkpoint, CheckpointError, Verifier


@dataclass(slots=True)
class Report:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.append(message)


def verify_bundle(bundle: dict[str, Any], trusted_key: str | None = None) -> Report:
    """Check one exported receipt: canonical form -> leaf -> audit path -> signed root."""
    report = Report()
    key_text = trusted_key or bundle.get("verifier_key")
    if not isinstance(key_text, str):
        report.fail("no verifier key: pass --key or keep `verifier_key` in the bundle")
        return report
    if trusted_key is None:
        report.notes.append(
            "checked against the key inside the bundle; pass --key with the log's published "
            "verifier key to know the checkpoint is the log's own"
        )
    try:
        verifier = Verifier.parse(key_text)
        cp = verifier.open(str(bundle["checkpoint"]))
        receipt = bundle["receipt"]
        index = int(bundle["leaf_index"])
        size = int(bundle["tree_size"])
        path = [bytes.fromhex(h) for h in bundle["audit_path"]]
    except CheckpointError as exc:
        report.fail(f"checkpoint: {exc}")
        return report
    except (KeyError, TypeError, ValueError) as exc:
        report.fail(f"the bundle is malformed: {exc!r}")
        return report
    if cp.size != size:
        report.fail(f"the proof is for a tree of {size} but the checkpoint is of {cp.size}")
    claimed_root = bundle.get("root_hash")
    if claimed_root is not None and claimed_root != cp.root.hex():
        report.fail("root_hash differs from the signed checkpoint's root")
    leaf = merkle.leaf_hash(reference(receipt))
    if bundle.get("leaf_hash") not in (None, leaf.hex()):
        report.fail("leaf_hash is not the hash of the receipt's canonical form")
    if not 0 <= index < size or not merkle.verify_inclusion(leaf, index, size, path, cp.root):
        report.fail(
            f"the receipt is not included at index {index} in the tree of {size} "
            "signed by the checkpoint (it was altered, or the proof is wrong)"
        )
    return report


def verify_body(receipt: dict[str, Any], which: str, data: bytes) -> bool:
    """Does `data` match the body hash the receipt commits to?"""
    from aicp.receipts.build import body_hash

    claimed = (receipt.get("bodies") or {}).get(which)
    return claimed is not None and claimed == body_hash(data)


@dataclass(slots=True)
class Leaf:
    index: int
    id: str
    data: bytes
    leaf_hash: bytes


async def verify_log(
    leaves: AsyncIterator[Leaf],
    checkpoints: Sequence[str],
    verifier: Verifier,
    published: Iterable[str] = (),
) -> Report:
    """Walk the whole log in order, recomputing every leaf and the root at every
    checkpoint; `published` are checkpoints held outside the database (an auditor's
    copies): each must be consistent with the log as it is now."""
    report = Report()
    signed: dict[int, Checkpoint] = {}
    for note in checkpoints:
        try:
            cp = verifier.open(note)
        except CheckpointError as exc:
            report.fail(f"stored checkpoint: {exc}")
            continue
        signed[cp.size] = cp
    outside: list[Checkpoint] = []
    for note in published:
        try:
            outside.append(verifier.open(note))
        except CheckpointError as exc:
            report.fail(f"published checkpoint: {exc}")
    wanted = {**{cp.size: cp for cp in outside}, **signed}
    edge: list[tuple[int, bytes]] = []
    size = 0
    roots: dict[int, bytes] = {}
    if 0 in wanted:
        roots[0] = merkle.EMPTY_ROOT
    async for leaf in leaves:
        if leaf.index != size:
            report.fail(f"leaf {size} is missing (the next stored leaf is {leaf.index})")
            size = leaf.index  # go on, to report what else is wrong
            edge = []
            break
        if reference(_loads(leaf.data)) != leaf.data:
            report.fail(f"receipt {leaf.id} (leaf {leaf.index}) is not in canonical form")
        computed = merkle.leaf_hash(leaf.data)
        if computed != leaf.leaf_hash:
            report.fail(f"receipt {leaf.id} (leaf {leaf.index}) does not match its leaf hash")
        merkle.complete_nodes_after_append(size, computed, edge)
        size += 1
        if size in wanted:
            roots[size] = merkle.right_edge_root(edge)
    report.notes.append(f"{size} receipts, {len(signed)} checkpoints")
    for n, cp in sorted(wanted.items()):
        where = "stored" if n in signed else "published"
        if n > size:
            report.fail(
                f"the {where} checkpoint of size {n} is beyond the log's {size} receipts: "
                "the log was truncated"
            )
        elif roots.get(n) != cp.root:
            report.fail(
                f"the {where} checkpoint of size {n} does not match the log: the log was "
                "rewritten or forked"
            )
    for cp in outside:
        stored = signed.get(cp.size)
        if stored is not None and stored.root != cp.root:
            report.fail(f"two signed checkpoints of size {cp.size} with different roots: a fork")
    return report


def _loads(data: bytes) -> Any:
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
