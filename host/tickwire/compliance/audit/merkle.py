"""The RFC 9162 (Certificate Transparency v2) Merkle tree: hashing, proofs, verification.

Hashing (RFC 9162 section 2.1.1), SHA-256::

    MTH({})      = SHA-256()
    leaf hash    = SHA-256(0x00 || d)
    node hash    = SHA-256(0x01 || left || right)
    MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Proofs are built as in sections 2.1.3.1 (PATH) and 2.1.4.1 (PROOF, SUBPROOF) and checked
with the verification algorithms of sections 2.1.3.2 and 2.1.4.2, which reject a proof of
the wrong length, for the wrong position or size, or with its hashes swapped.

:class:`MerkleTree` keeps every complete subtree's hash (level ``h`` holds the hashes of the
aligned runs of ``2**h`` leaves), so an append costs one leaf hash plus, on average, one node
hash, and the root or a proof for any earlier size costs ``O(log n)`` hashes.
"""

import hashlib

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof that does not verify (the message says why)."""


def leaf_hash(data):
    """SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left, right):
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n):
    """The largest power of two strictly below ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 9162 tree over leaf hashes."""

    def __init__(self):
        self.levels = [[]]          # levels[h][i]: hash of leaves [i * 2**h, (i + 1) * 2**h)

    def __len__(self):
        return len(self.levels[0])

    def append(self, data):
        """Add the leaf for ``data`` (bytes); return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h):
        """Add a leaf by its leaf hash; return its index."""
        levels = self.levels
        index = len(levels[0])
        levels[0].append(h)
        i, level = index, 0
        while i & 1:
            above = level + 1
            if above == len(levels):
                levels.append([])
            row = levels[level]
            h = node_hash(row[i - 1], h)
            levels[above].append(h)
            i >>= 1
            level = above
        return index

    def root(self, size=None):
        """MTH of the first ``size`` leaves (default: all)."""
        size = len(self) if size is None else size
        self._check_size(size)
        return self._hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index, size=None):
        """PATH(index, D[size]): the audit path of leaf ``index`` in the tree of ``size``."""
        size = len(self) if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def consistency_proof(self, first, second=None):
        """PROOF(first, D[second]): the tree of ``second`` leaves extends that of ``first``."""
        second = len(self) if second is None else second
        self._check_size(second)
        if not 0 < first <= second:
            raise ValueError(f"no consistency proof from size {first} to {second}")
        return self._subproof(first, 0, second, True)

    # -- internals -------------------------------------------------------------------------

    def _check_size(self, size):
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} outside 0..{len(self)}")

    def _hash(self, start, end):
        """MTH(D[start:end]); ``start`` is aligned as RFC 9162's recursion leaves it."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def _path(self, m, start, end):
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return self._path(m, start, start + k) + [self._hash(start + k, end)]
        return self._path(m - k, start + k, end) + [self._hash(start, start + k)]

    def _subproof(self, m, start, end, whole):
        n = end - start
        if m == n:
            return [] if whole else [self._hash(start, end)]
        k = _split(n)
        if m <= k:
            return self._subproof(m, start, start + k, whole) + [self._hash(start + k, end)]
        return self._subproof(m - k, start + k, end, False) + [self._hash(start, start + k)]


def _hash32(value, what):
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ProofError(f"{what} is not a 32-byte hash")
    return bytes(value)


def root_from_inclusion(index, size, leaf, path):
    """The root an inclusion path leads to (RFC 9162 2.1.3.2, steps 1-5 without the compare).

    Raises
    ------
    ProofError
        The index is outside the tree, or the path is too long or too short for the size.
    """
    if not isinstance(index, int) or not isinstance(size, int) or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    fn, sn = index, size - 1
    r = _hash32(leaf, "leaf hash")
    for number, p in enumerate(path):
        p = _hash32(p, f"path element {number}")
        if sn == 0:
            raise ProofError(f"inclusion path longer than a tree of size {size} allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion path shorter than a tree of size {size} needs")
    return r


def verify_inclusion(index, size, leaf, path, root):
    """Check that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises
    ------
    ProofError
        If it is not (the message says why).
    """
    if root_from_inclusion(index, size, leaf, path) != _hash32(root, "root"):
        raise ProofError(f"inclusion path of leaf {index} does not lead to the tree head's root")


def verify_consistency(first, second, first_root, second_root, path):
    """Check that the tree of ``second`` leaves with ``second_root`` extends the tree of
    ``first`` leaves with ``first_root`` (RFC 9162 2.1.4.2).

    Raises
    ------
    ProofError
        If it does not (the message says why).
    """
    first_root = _hash32(first_root, "first root")
    second_root = _hash32(second_root, "second root")
    if not isinstance(first, int) or not isinstance(second, int) or not 0 <= first <= second:
        raise ProofError(f"no consistency between sizes {first} and {second}")
    path = [_hash32(p, f"proof element {i}") for i, p in enumerate(path)]
    if first == second:
        if path:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different roots for the same size {first}")
        return
    if first == 0:
        if path:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not path:
        raise ProofError("empty consistency proof")
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof longer than sizes {first} → {second} allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof shorter than sizes {first} → {second} need")
    if fr != first_root:
        raise ProofError(f"consistency proof does not lead to the root of size {first}")
    if sr != second_root:
        raise ProofError(f"consistency proof does not lead to the root of size {second}")
