"""The RFC 9162 Merkle tree: published vectors, proofs drawn by hand, every small tree.

Expected values never come from the code under test: they are published hex, hashes
written out with hashlib, or `RFCTree` below, which is the RFC's recursive text as-is.
"""

# Over 500 lines on purpose: a fifth is published hex kept in the source's own layout so it
# can be checked against it line by line, and every section shares RFCTree and the vectors.

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable

import pytest

from aicp.receipts.merkle import (
    EMPTY_ROOT,
    complete_nodes_after_append,
    consistency_proof,
    edge_positions,
    inclusion_proof,
    leaf_hash,
    node_hash,
    right_edge_root,
    root,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf(data: bytes) -> bytes:
    return _sha(b"\x00" + data)


def _node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


Range = tuple[int, int]


class RFCTree:
    """MTH, PATH and SUBPROOF of RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, recursive as written.

    Proofs come back as leaf ranges, so tests can check which subtrees a proof asks for.
    """

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self._memo: dict[Range, bytes] = {}

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return _sha(b"")
        if n == 1:
            return self.leaves[start]
        if (start, end) not in self._memo:
            k = _split(n)
            self._memo[start, end] = _node(self.mth(start, start + k), self.mth(start + k, end))
        return self._memo[start, end]

    def path(self, m: int, start: int, end: int) -> list[Range]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, start, start + k), (start + k, end)]
        return [*self.path(m - k, start + k, end), (start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[Range]:
        n = end - start
        if m == n:
            return [] if b else [(start, end)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), (start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), (start, start + k)]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return [self.mth(*r) for r in self.path(index, 0, size)]

    def consistency(self, old: int, new: int) -> list[bytes]:
        return [self.mth(*r) for r in self.subproof(old, 0, new, True)]


# Published values, copied as hex. Leaves, roots for sizes 0..8 and the proofs are from
# transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`, `inclusionProofs`,
# `consistencyProofs`; its leaf numbers are 1-based, the indexes here are 0-based). The
# same roots appear in certificate-transparency-go merkletree tests and Trillian.
CT_DATA = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [  # index = tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, size, path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old, new, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

CT_LEAVES = [_leaf(d) for d in CT_DATA]
a, b, c, d, e, f, g, h = CT_LEAVES  # the drawings below name leaves by letter


def _ct_root(size: int) -> bytes:
    return bytes.fromhex(CT_ROOTS[size])


def _hexes(hashes: list[bytes]) -> list[str]:
    return [x.hex() for x in hashes]


def _ct_get(start: int, end: int) -> bytes:
    return RFCTree(CT_LEAVES).mth(start, end)


# --- hash functions and published roots ---------------------------------------------


def test_empty_root_is_sha256_of_the_empty_string() -> None:
    assert EMPTY_ROOT == _sha(b"") == _ct_root(0)
    assert root([]) == EMPTY_ROOT
    assert right_edge_root([]) == EMPTY_ROOT


def test_leaf_hash_prefixes_a_zero_byte() -> None:
    assert leaf_hash(b"") == _sha(b"\x00") == _ct_root(1)
    assert leaf_hash(b"\x10\x11") == _sha(b"\x00\x10\x11")


def test_node_hash_prefixes_a_one_byte() -> None:
    assert node_hash(a, b) == _sha(b"\x01" + a + b) == _ct_root(2)
    assert node_hash(b, a) != node_hash(a, b)


@pytest.mark.parametrize("size", range(9))
def test_root_matches_published_ct_root(size: int) -> None:
    assert root([leaf_hash(x) for x in CT_DATA[:size]]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_proof_matches_published_vector(index: int, size: int, path: list[str]) -> None:
    assert _hexes(inclusion_proof(index, size, _ct_get)) == path


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_published_inclusion_proof_verifies(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, _ct_root(size))


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proof_matches_published_vector(old: int, new: int, proof: list[str]) -> None:
    assert _hexes(consistency_proof(old, new, _ct_get)) == proof


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_published_consistency_proof_verifies(old: int, new: int, proof: list[str]) -> None:
    hashes = [bytes.fromhex(p) for p in proof]
    assert verify_consistency(old, new, _ct_root(old), _ct_root(new), hashes)


# --- small trees drawn by hand ------------------------------------------------------
#
# The 7-leaf tree of the CT leaves, split at the largest power of two below each size:
#
#                 root7
#               /       \
#          abcd           efg
#         /    \         /   \
#       ab      cd     ef     g
#      /  \    /  \   /  \
#     a    b  c    d e    f


def test_seven_leaf_root_drawn_by_hand_matches_published() -> None:
    root7 = _node(_node(_node(a, b), _node(c, d)), _node(_node(e, f), g))
    assert root7 == _ct_root(7) == root(CT_LEAVES[:7])


def test_audit_path_of_leaf_5_in_7_leaf_tree_is_e_g_abcd() -> None:
    abcd = _node(_node(a, b), _node(c, d))
    assert inclusion_proof(5, 7, _ct_get) == [e, g, abcd]
    assert verify_inclusion(f, 5, 7, [e, g, abcd], _ct_root(7))


def test_audit_path_of_lone_right_leaf_6_in_7_leaf_tree_is_ef_abcd() -> None:
    ef, abcd = _node(e, f), _node(_node(a, b), _node(c, d))
    assert inclusion_proof(6, 7, _ct_get) == [ef, abcd]
    assert verify_inclusion(g, 6, 7, [ef, abcd], _ct_root(7))


def test_audit_path_of_leaf_2_in_3_leaf_tree_is_ab() -> None:
    assert inclusion_proof(2, 3, _ct_get) == [_node(a, b)]


def test_audit_path_in_one_leaf_tree_is_empty() -> None:
    assert inclusion_proof(0, 1, _ct_get) == []
    assert verify_inclusion(a, 0, 1, [], a)


def test_consistency_proof_from_3_to_7_is_c_d_ab_efg() -> None:
    # The old tree (a b c) is ab + c; c sits under cd, so the proof starts there.
    efg = _node(_node(e, f), g)
    expected = [c, d, _node(a, b), efg]
    assert consistency_proof(3, 7, _ct_get) == expected
    assert verify_consistency(3, 7, _ct_root(3), _ct_root(7), expected)


def test_consistency_proof_from_4_to_7_omits_the_old_root() -> None:
    # abcd is the old root itself; RFC 9162 leaves it out and the verifier prepends it.
    efg = _node(_node(e, f), g)
    assert consistency_proof(4, 7, _ct_get) == [efg]
    assert verify_consistency(4, 7, _ct_root(4), _ct_root(7), [efg])


def test_consistency_proof_from_5_to_7_is_e_f_g_abcd() -> None:
    abcd = _node(_node(a, b), _node(c, d))
    assert consistency_proof(5, 7, _ct_get) == [e, f, g, abcd]


def test_consistency_proof_between_equal_sizes_is_empty() -> None:
    for n in range(1, 9):
        assert consistency_proof(n, n, _ct_get) == []
        assert verify_consistency(n, n, _ct_root(n), _ct_root(n), [])


def test_edge_positions_of_seven_leaves_are_abcd_ef_g() -> None:
    assert edge_positions(7) == [(2, 0), (1, 2), (0, 6)]
    assert edge_positions(0) == []
    assert edge_positions(8) == [(3, 0)]


def test_appending_fourth_leaf_completes_d_cd_abcd() -> None:
    ab, cd = _node(a, b), _node(c, d)
    edge = [(1, ab), (0, c)]
    nodes = complete_nodes_after_append(3, d, edge)
    assert nodes == [(0, 3, d), (1, 1, cd), (2, 0, _node(ab, cd))]
    assert edge == [(2, _node(ab, cd))]


def test_appending_to_an_even_tree_completes_only_the_leaf() -> None:
    edge = [(2, _ct_root(4))]
    assert complete_nodes_after_append(4, e, edge) == [(0, 4, e)]
    assert edge == [(2, _ct_root(4)), (0, e)]
    assert right_edge_root(edge) == _ct_root(5)


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


# --- arguments outside the RFC's domain ---------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 5), (-1, 5), (8, 7)])
def test_inclusion_proof_rejects_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        inclusion_proof(index, size, _ct_get)
    assert not verify_inclusion(a, index, size, [], a)


@pytest.mark.parametrize(("old", "new"), [(0, 0), (0, 5), (6, 5), (-1, 3), (2, 1)])
def test_consistency_proof_rejects_sizes_the_rfc_does_not_define(old: int, new: int) -> None:
    with pytest.raises(ValueError):
        consistency_proof(old, new, _ct_get)
    assert not verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, [])


def test_consistency_between_equal_sizes_needs_equal_roots_and_no_proof() -> None:
    assert verify_consistency(3, 3, _ct_root(3), _ct_root(3), [])
    assert not verify_consistency(3, 3, _ct_root(3), _ct_root(4), [])
    assert not verify_consistency(3, 3, _ct_root(3), _ct_root(3), [_ct_root(3)])


def test_consistency_of_a_growing_tree_with_empty_proof_fails() -> None:
    assert not verify_consistency(4, 8, _ct_root(4), _ct_root(8), [])
    assert not verify_consistency(3, 4, _ct_root(3), _ct_root(4), [])


@pytest.mark.parametrize(("start", "end"), [(0, 0), (3, 3), (4, 2), (-1, 2)])
def test_subtree_hash_rejects_empty_or_negative_ranges(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        subtree_hash(start, end, lambda level, index: b"")


def test_complete_nodes_after_append_rejects_a_stale_right_edge() -> None:
    with pytest.raises(ValueError):
        complete_nodes_after_append(3, d, [(1, _node(a, b))])  # the edge of 2 leaves
    with pytest.raises(ValueError):
        complete_nodes_after_append(2, c, [(0, a), (0, b)])


def test_edge_positions_rejects_negative_size() -> None:
    with pytest.raises(ValueError):
        edge_positions(-1)


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
