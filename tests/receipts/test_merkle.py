"""The RFC 9162 Merkle tree: hash functions, published vectors, proofs drawn by hand,
and arguments outside the RFC's domain (expected values from tests/receipts/rfc_merkle.py)."""

from __future__ import annotations

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
from tests.receipts.rfc_merkle import (
    CT_CONSISTENCY,
    CT_DATA,
    CT_INCLUSION,
    CT_LEAVES,
    CT_ROOTS,
    _ct_get,
    _ct_root,
    _hexes,
    _node,
    _sha,
    a,
    b,
    c,
    d,
    e,
    f,
    g,
)

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
