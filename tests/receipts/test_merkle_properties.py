"""The RFC 9162 Merkle tree, by property: every small tree, tampered proofs, the node
table built by appending, and proof cost in a million-leaf tree."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import pytest

from aicp.receipts.merkle import (
    complete_nodes_after_append,
    consistency_proof,
    edge_positions,
    inclusion_proof,
    right_edge_root,
    root,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.receipts.rfc_merkle import (
    Range,
    RFCTree,
    _leaf,
    _sha,
)

# --- every small tree ---------------------------------------------------------------

MAX = 64
TREE = RFCTree([_leaf(i.to_bytes(2, "big")) for i in range(2 * MAX + 1)])


def _recording(asked: list[Range]) -> Callable[[int, int], bytes]:
    def get(start: int, end: int) -> bytes:
        asked.append((start, end))
        return TREE.mth(start, end)

    return get


def _flip(hashes: list[bytes], i: int) -> list[bytes]:
    bad = bytearray(hashes[i])
    bad[i % len(bad)] ^= 0x40
    return [*hashes[:i], bytes(bad), *hashes[i + 1 :]]


@functools.cache
def _inclusion_cases() -> list[tuple[int, int, list[bytes]]]:
    return [(i, n, inclusion_proof(i, n, TREE.mth)) for n in range(1, MAX + 1) for i in range(n)]


@functools.cache
def _consistency_cases() -> list[tuple[int, int, list[bytes]]]:
    return [
        (m, n, consistency_proof(m, n, TREE.mth))
        for n in range(1, MAX + 1)
        for m in range(1, n + 1)
    ]


def test_root_agrees_with_rfc_recursive_definition() -> None:
    for n in range(2 * MAX + 1):
        assert root(TREE.leaves[:n]) == TREE.mth(0, n)


def test_every_inclusion_proof_up_to_64_leaves_asks_for_rfc_path_and_verifies() -> None:
    for n in range(1, MAX + 1):
        for i in range(n):
            asked: list[Range] = []
            proof = inclusion_proof(i, n, _recording(asked))
            assert proof == TREE.inclusion(i, n)
            assert sorted(asked) == sorted(TREE.path(i, 0, n))
            assert verify_inclusion(TREE.leaves[i], i, n, proof, TREE.mth(0, n))


def test_every_consistency_proof_up_to_64_leaves_asks_for_rfc_subproof_and_verifies() -> None:
    for n in range(1, MAX + 1):
        for m in range(1, n + 1):
            asked: list[Range] = []
            proof = consistency_proof(m, n, _recording(asked))
            assert proof == TREE.consistency(m, n)
            assert sorted(asked) == sorted(TREE.subproof(m, 0, n, True))
            assert verify_consistency(m, n, TREE.mth(0, m), TREE.mth(0, n), proof)


def test_inclusion_proof_with_one_flipped_byte_fails() -> None:
    for i, n, proof in _inclusion_cases():
        for j in range(len(proof)):
            assert not verify_inclusion(TREE.leaves[i], i, n, _flip(proof, j), TREE.mth(0, n))
        bad_leaf = _flip([TREE.leaves[i]], 0)[0]
        assert not verify_inclusion(bad_leaf, i, n, proof, TREE.mth(0, n))


def test_inclusion_proof_for_a_wrong_index_or_leaf_fails() -> None:
    for i, n, proof in _inclusion_cases():
        root_n = TREE.mth(0, n)
        for j in {i - 1, i + 1, i ^ 1, i ^ 2} - {i}:
            if 0 <= j < n:
                assert not verify_inclusion(TREE.leaves[i], j, n, proof, root_n)
                assert not verify_inclusion(TREE.leaves[j], i, n, proof, root_n)


def test_inclusion_proof_for_a_wrong_size_fails() -> None:
    for i, n, proof in _inclusion_cases():
        for wrong in (n * 2, n // 2):
            assert not verify_inclusion(TREE.leaves[i], i, wrong, proof, TREE.mth(0, n))
        for wrong in (n - 1, n + 1):  # presented as a proof for the checkpoint of that size
            assert not verify_inclusion(TREE.leaves[i], i, wrong, proof, TREE.mth(0, wrong))


def test_inclusion_path_does_not_commit_to_the_tree_size() -> None:
    # RFC 9162 as written: leaf 0 of (ab c) has path b, c, and the same two steps are
    # valid in a 4-leaf tree. Only the signed checkpoint binds a size to a root.
    path = TREE.inclusion(0, 3)
    assert verify_inclusion(TREE.leaves[0], 0, 4, path, TREE.mth(0, 3))


def test_truncated_or_extended_inclusion_path_fails() -> None:
    for i, n, proof in _inclusion_cases():
        root_n = TREE.mth(0, n)
        if proof:
            assert not verify_inclusion(TREE.leaves[i], i, n, proof[:-1], root_n)
            assert not verify_inclusion(TREE.leaves[i], i, n, proof[1:], root_n)
        assert not verify_inclusion(TREE.leaves[i], i, n, [*proof, root_n], root_n)
        assert not verify_inclusion(TREE.leaves[i], i, n, [root_n, *proof], root_n)


def test_consistency_proof_with_one_flipped_byte_fails() -> None:
    for m, n, proof in _consistency_cases():
        for j in range(len(proof)):
            assert not verify_consistency(m, n, TREE.mth(0, m), TREE.mth(0, n), _flip(proof, j))


def test_consistency_proof_with_swapped_or_foreign_roots_fails() -> None:
    for m, n, proof in _consistency_cases():
        if m < n:
            old_root, new_root = TREE.mth(0, m), TREE.mth(0, n)
            assert not verify_consistency(m, n, new_root, old_root, proof)
            assert not verify_consistency(m, n, old_root, TREE.mth(0, n + 1), proof)
            assert not verify_consistency(m, n, TREE.mth(1, m + 1), new_root, proof)


def test_consistency_proof_for_wrong_sizes_fails() -> None:
    for m, n, proof in _consistency_cases():
        if m == n:
            continue
        for wrong in {m - 1, m + 1, m ^ 2, m * 2} - {m}:
            if 0 <= wrong <= n:
                assert not verify_consistency(wrong, n, TREE.mth(0, wrong), TREE.mth(0, n), proof)
        for wrong in (n * 2, n - 1, n + 1):
            if wrong >= m:
                new_root = TREE.mth(0, wrong)
                assert not verify_consistency(m, wrong, TREE.mth(0, m), new_root, proof)


def test_truncated_or_extended_consistency_proof_fails() -> None:
    for m, n, proof in _consistency_cases():
        old_root, new_root = TREE.mth(0, m), TREE.mth(0, n)
        if proof:
            assert not verify_consistency(m, n, old_root, new_root, proof[:-1])
            assert not verify_consistency(m, n, old_root, new_root, proof[1:])
        assert not verify_consistency(m, n, old_root, new_root, [*proof, new_root])
        assert not verify_consistency(m, n, old_root, new_root, [old_root, *proof])


# --- the node table: append one leaf at a time --------------------------------------


def _sampled(n: int) -> list[int]:
    return sorted({*range(0, n, max(1, n // 12)), n - 1})


def test_node_table_built_by_appending_serves_the_rfc_proofs_up_to_300_leaves() -> None:
    ref = RFCTree([_leaf(b"receipt %d" % i) for i in range(300)])
    table: dict[tuple[int, int], bytes] = {}
    edge: list[tuple[int, bytes]] = []

    def complete(level: int, index: int) -> bytes:
        return table[level, index]  # KeyError = asked for a node not complete yet

    def get(start: int, end: int) -> bytes:
        return subtree_hash(start, end, complete)

    for size_before, leaf in enumerate(ref.leaves):
        size = size_before + 1
        for level, index, node in complete_nodes_after_append(size_before, leaf, edge):
            assert (level, index) not in table
            assert node == ref.mth(index << level, (index + 1) << level)
            table[level, index] = node
        assert len(table) == sum(size >> level for level in range(size.bit_length()))
        assert right_edge_root(edge) == ref.mth(0, size)
        assert [table[p] for p in edge_positions(size)] == [node for _, node in edge]
        assert [level for level, _ in edge_positions(size)] == [level for level, _ in edge]
        for i in _sampled(size):
            assert inclusion_proof(i, size, get) == ref.inclusion(i, size)
        for m in _sampled(size):
            assert consistency_proof(m + 1, size, get) == ref.consistency(m + 1, size)


def test_subtree_hash_of_any_range_matches_rfc_even_off_node_boundaries() -> None:
    def complete(level: int, index: int) -> bytes:
        return TREE.mth(index << level, (index + 1) << level)

    for start in range(40):
        for end in range(start + 1, 41):
            assert subtree_hash(start, end, complete) == TREE.mth(start, end)


# --- a million-leaf tree, virtually -------------------------------------------------


class _CountingNodes:
    """A stand-in node table: a deterministic hash per (level, index), and a call count."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls = 0

    def complete(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, "asked for a node the tree has not completed"
        self.calls += 1
        return _sha(level.to_bytes(1, "big") + index.to_bytes(8, "big"))

    def get(self, start: int, end: int) -> bytes:
        return subtree_hash(start, end, self.complete)


@pytest.mark.parametrize("size", [1_000_000, 2**20 - 1, 2**20, 2**20 + 1])
def test_proofs_in_a_million_leaf_tree_read_logarithmically_many_nodes(size: int) -> None:
    # A proof has at most one sibling off a node boundary (on the tree's right edge) and
    # that one costs one node per set bit of its length, so: depth + bits + 1.
    bound = 2 * size.bit_length() + 1
    nodes = _CountingNodes(size)
    for i in [0, 1, 2, 3, size // 3, size // 2, size - 2, size - 1, 524_287, 777_777]:
        nodes.calls = 0
        inclusion_proof(i, size, nodes.get)
        assert nodes.calls <= bound
    for m in [1, 2, 3, 5, size // 3, size // 2 + 1, size - 2, size - 1, size, 524_287]:
        nodes.calls = 0
        consistency_proof(m, size, nodes.get)
        assert nodes.calls <= bound


def _best_seconds(work: Callable[[], object], runs: int = 20) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


# Measured at about 50 microseconds each; the bound leaves room for a slow CI machine.
def test_inclusion_proof_in_a_million_leaf_tree_takes_under_five_milliseconds() -> None:
    nodes = _CountingNodes(1_000_000)
    assert _best_seconds(lambda: inclusion_proof(123_456, 1_000_000, nodes.get)) < 0.005


def test_consistency_proof_in_a_million_leaf_tree_takes_under_five_milliseconds() -> None:
    nodes = _CountingNodes(1_000_000)
    assert _best_seconds(lambda: consistency_proof(500_001, 1_000_000, nodes.get)) < 0.005
