"""The RFC 9162 Merkle tree: known vectors, proofs for every shape, hostile proofs rejected."""

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.compliance.audit.canonical import canonical_json
from tickwire.compliance.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference leaves and the roots of each prefix (RFC 6962 test
# data, which RFC 9162 keeps: same hashing).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
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
INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
CONSISTENCY = {
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}


def _tree(leaves):
    tree = MerkleTree()
    for data in leaves:
        tree.append(data)
    return tree


def _mth(hashes):
    """RFC 9162's recursive definition, written out directly (the independent reference)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def test_leaf_and_node_prefixes():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert EMPTY_ROOT.hex() == ROOTS[0]


def test_reference_roots_for_every_prefix():
    tree = _tree(LEAVES)
    for size, root in enumerate(ROOTS):
        assert tree.root(size).hex() == root


def test_reference_proofs():
    tree = _tree(LEAVES)
    for (index, size), path in INCLUSION.items():
        assert [p.hex() for p in tree.inclusion_proof(index, size)] == path
        verify_inclusion(index, size, leaf_hash(LEAVES[index]), tree.inclusion_proof(index, size),
                         tree.root(size))
    for (first, second), path in CONSISTENCY.items():
        assert [p.hex() for p in tree.consistency_proof(first, second)] == path
        verify_consistency(first, second, tree.root(first), tree.root(second),
                           tree.consistency_proof(first, second))


def test_every_shape_up_to_70_leaves():
    data = [bytes([i, i * 7 % 256]) for i in range(70)]
    tree = _tree(data)
    hashes = [leaf_hash(d) for d in data]
    for n in range(1, 71):
        root = tree.root(n)
        assert root == _mth(hashes[:n])
        for i in range(0, n, 3):
            verify_inclusion(i, n, hashes[i], tree.inclusion_proof(i, n), root)
        for m in range(1, n + 1, 5):
            verify_consistency(m, n, tree.root(m), root, tree.consistency_proof(m, n))


@pytest.fixture
def tree8():
    return _tree([bytes([i]) for i in range(13)])


def test_inclusion_rejects_hostile_proofs(tree8):
    n, i = 13, 6
    root, leaf = tree8.root(n), leaf_hash(bytes([i]))
    path = tree8.inclusion_proof(i, n)
    hostile = {
        "forged element": [path[0][:-1] + bytes([path[0][-1] ^ 1])] + path[1:],
        "swapped siblings": [path[1], path[0]] + path[2:],
        "extra element": path + [path[-1]],
        "missing element": path[:-1],
        "not a hash": [b"short"] + path[1:],
    }
    for what, bad in hostile.items():
        with pytest.raises(ProofError):
            verify_inclusion(i, n, leaf, bad, root)
        assert what
    # Wrong positions and sizes whose path has another length or shape (a size with the same
    # shape is bound by the signed tree head, not by the path).
    for index, size in ((i + 1, n), (i - 1, n), (i, 8), (i, 7), (i, 17), (i, 33), (n, n),
                        (-1, n), (i, 0), (12, n)):
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, path, root)
    with pytest.raises(ProofError):
        verify_inclusion(i, n, leaf_hash(b"other"), path, root)
    with pytest.raises(ProofError):
        verify_inclusion(i, n, leaf, path, tree8.root(n - 1))


def test_consistency_rejects_hostile_proofs(tree8):
    m, n = 5, 13
    proof = tree8.consistency_proof(m, n)
    r1, r2 = tree8.root(m), tree8.root(n)
    hostile = [
        [proof[0][:-1] + bytes([proof[0][-1] ^ 1])] + proof[1:],
        [proof[1], proof[0]] + proof[2:],
        proof + [proof[0]],
        proof[:-1],
        [],
    ]
    for bad in hostile:
        with pytest.raises(ProofError):
            verify_consistency(m, n, r1, r2, bad)
    for first, second in ((m + 1, n), (m - 1, n), (m, 8), (m, 33), (m, 4), (n, m), (0, n)):
        with pytest.raises(ProofError):
            verify_consistency(first, second, r1, r2, proof)
    with pytest.raises(ProofError):
        verify_consistency(m, n, tree8.root(m + 1), r2, proof)
    with pytest.raises(ProofError):
        verify_consistency(m, n, r1, tree8.root(n - 1), proof)
    # Equal sizes: only an empty proof and equal roots.
    verify_consistency(n, n, r2, r2, [])
    with pytest.raises(ProofError):
        verify_consistency(n, n, r2, r1, [])
    with pytest.raises(ProofError):
        verify_consistency(n, n, r2, r2, [r1])


def test_sizes_outside_the_tree_are_refused(tree8):
    with pytest.raises(ValueError):
        tree8.root(14)
    with pytest.raises(ValueError):
        tree8.inclusion_proof(13, 13)
    with pytest.raises(ValueError):
        tree8.consistency_proof(0, 13)


def test_canonical_json_is_the_standard_librarys():
    values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                     max_size=4), max_leaves=12)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def same(obj):
        reference = json.dumps(obj, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
        assert canonical_json(obj) == reference

    same()
