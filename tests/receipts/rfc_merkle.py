"""The RFC 9162 Merkle tree as the RFC writes it, and the published CT vectors.

The tests of aicp.receipts.merkle take their expected values from here, never from
the code under test: published hex, hashes written out with hashlib, and `RFCTree`,
the RFC's recursive text as-is. Much of this module is published hex, kept in the
source's own layout so it can be checked against it line by line.
"""

from __future__ import annotations

import hashlib


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
