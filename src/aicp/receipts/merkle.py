"""The Merkle tree of the receipt log, hashed exactly as RFC 9162 (CT v2), same as RFC 6962.

Pure functions over bytes, so any CT-compatible verifier can check our receipts.

Proof generation never sees the leaves: it asks `get(start, end)` for the hash of the
subtree over leaves [start, end), and only for the ranges the RFC's recursive definition
names, so the log can answer from stored nodes. The log stores perfect subtrees only,
addressed as (level, index) = the 2**level leaves from index * 2**level; `subtree_hash`
rebuilds any range from those, and `complete_nodes_after_append` says which ones to
insert after each append. Verification transcribes the RFC's bit-shifting algorithms
and shares no code with generation, so each checks the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

_sha256 = hashlib.sha256

# RFC 9162 §2.1.1: MTH({}) = HASH(), the root of the empty tree.
EMPTY_ROOT: bytes = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """HASH(0x00 || data); the prefix keeps a leaf from posing as a node (RFC 9162 §2.1.1)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right), the interior node of RFC 9162 §2.1.1."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1 over leaf hashes (not leaf data).

    Hashed level by level, carrying an odd last node up unchanged: that is the same tree
    as the RFC's recursive split, without the recursion or the slicing.
    """
    if not leaves:
        return EMPTY_ROOT
    level = leaves
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, get: Callable[[int, int], bytes]) -> list[bytes]:
    """The audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; the RFC lists the path bottom-up, hence the reverse.
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            path.append(get(mid, end))
            end = mid
        else:
            path.append(get(start, mid))
            start = mid
    path.reverse()
    return path


def consistency_proof(old: int, new: int, get: Callable[[int, int], bytes]) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1, deepest node first.

    The RFC defines it for 0 < old <= new; for old == new it is the empty list, since
    SUBPROOF(m, D[m], true) = {}. There is no proof from the empty tree: old == 0 raises.
    """
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    proof: list[bytes] = []
    start, end = 0, new
    whole = True  # the RFC's b: is [start, end) still the left edge of the old tree?
    while old != end:
        mid = start + _split(end - start)
        if old <= mid:
            proof.append(get(mid, end))
            end = mid
        else:
            proof.append(get(start, mid))
            start = mid
            whole = False
    if not whole:
        proof.append(get(start, end))
    proof.reverse()
    return proof


def subtree_hash(start: int, end: int, complete: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[start:end]) from stored perfect subtrees; `complete(level, index)` returns one.

    Every range a proof asks for starts on a multiple of a power of two at least its
    length, so its left parts are perfect and it costs one call per set bit of the
    length. Other ranges are also correct but split down into smaller perfect pieces.
    """
    if not 0 <= start < end:
        raise ValueError(f"[{start}, {end}) is not a non-empty range of leaves")
    lefts: list[bytes] = []
    while True:
        n = end - start
        if n & (n - 1) == 0 and start & (n - 1) == 0:
            level = n.bit_length() - 1
            right = complete(level, start >> level)
            break
        k = _split(n)
        if start & (k - 1) == 0:
            level = k.bit_length() - 1
            lefts.append(complete(level, start >> level))
        else:  # not on a node boundary: no proof asks for this, recursion is bounded by log n
            lefts.append(subtree_hash(start, start + k, complete))
        start += k
    for left in reversed(lefts):
        right = node_hash(left, right)
    return right


def edge_positions(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that make up a tree of `size`, largest first.

    One per set bit of `size`: what a writer loads from the node table to resume appending.
    """
    if size < 0:
        raise ValueError(f"a tree cannot have {size} leaves")
    positions: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            positions.append((level, start >> level))
            start += 1 << level
    return positions


def complete_nodes_after_append(
    size_before: int, leaf: bytes, right_edge: list[tuple[int, bytes]]
) -> list[tuple[int, int, bytes]]:
    """Append a leaf hash to the compact range `right_edge` (updated in place).

    Returns the perfect subtrees this append completes, as (level, index, hash), the leaf
    itself first at level 0: exactly the rows to add to the node table.
    """
    levels = [level for level, _ in right_edge]
    if levels != [level for level, _ in edge_positions(size_before)]:
        # A stale edge would silently fork the log, so refuse rather than guess.
        raise ValueError(f"right edge levels {levels} do not match a tree of {size_before}")
    nodes = [(0, size_before, leaf)]
    level, right = 0, leaf
    while right_edge and right_edge[-1][0] == level:
        right = node_hash(right_edge.pop()[1], right)
        level += 1
        nodes.append((level, size_before >> level, right))
    right_edge.append((level, right))
    return nodes


def right_edge_root(right_edge: Sequence[tuple[int, bytes]]) -> bytes:
    """The root from a compact range: fold its hashes from the right with node_hash."""
    if not right_edge:
        return EMPTY_ROOT
    right = right_edge[-1][1]
    for i in range(len(right_edge) - 2, -1, -1):
        right = node_hash(right_edge[i][1], right)
    return right


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step: is leaf hash `leaf` at `index` under `root`?"""
    if not 0 <= index < size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = leaf  # step 3
    for p in path:  # step 4
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root  # step 5


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step: does the tree of `new` leaves extend that of `old`?

    The RFC covers 0 < old < new. For old == new we accept only the empty proof with equal
    roots (what consistency_proof returns); old == 0 or old > new is always False.
    """
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:  # step 1
        return False
    rest = iter(proof)
    # Step 2 prepends old_root when old is a power of two; step 5 takes the first value.
    fr = sr = old_root if old & (old - 1) == 0 else next(rest)
    fn, sn = old - 1, new - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    for c in rest:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0  # step 7
