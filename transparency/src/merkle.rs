//! RFC 9162 Merkle tree hashing, proofs and their verification.
//!
//! The log stores the hash of every *perfect* subtree (aligned, a power of
//! two leaves) as it completes: `(level, index)` covers leaves
//! `[index·2^level, (index+1)·2^level)`. Every node of the RFC tree of any
//! size is either such a subtree or a right edge made of at most log₂ n of
//! them, so a root or a proof needs O(log n) stored hashes, never a rescan.
//!
//! Proof construction runs the RFC's recursive definitions over an abstract
//! "hash of range" function twice: once to learn which stored subtrees are
//! needed (fetched in one query), once to compute.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of an empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly less than `n` (n > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A stored perfect subtree: (level, index).
pub type NodeId = (u32, u64);

/// The perfect subtrees whose hashes make up `MTH(D[a..b])`, largest first.
/// `a` must be aligned as the RFC recursion aligns it.
pub fn decompose(a: u64, b: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = a;
    while start < b {
        let size = b - start;
        let level = 63 - size.leading_zeros();
        out.push((level, start >> level));
        start += 1 << level;
    }
    out
}

/// `MTH(D[a..b])` from stored subtrees.
pub fn range_hash(a: u64, b: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Hash> {
    if a == b {
        return Some(empty_root());
    }
    let parts = decompose(a, b);
    let mut acc = *nodes.get(parts.last()?)?;
    for id in parts.iter().rev().skip(1) {
        acc = node_hash(nodes.get(id)?, &acc);
    }
    Some(acc)
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[a..b])` as a list of ranges whose hashes
/// form the proof.
fn path_ranges(m: u64, a: u64, b: u64, out: &mut Vec<(u64, u64)>) {
    let n = b - a;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_ranges(m, a, a + k, out);
        out.push((a + k, b));
    } else {
        path_ranges(m - k, a + k, b, out);
        out.push((a, a + k));
    }
}

/// RFC 9162 §2.1.4.1 `SUBPROOF(m, D[a..b], start)` as ranges.
fn subproof_ranges(m: u64, a: u64, b: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
    let n = b - a;
    if m == n {
        if !complete {
            out.push((a, b));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof_ranges(m, a, a + k, complete, out);
        out.push((a + k, b));
    } else {
        subproof_ranges(m - k, a + k, b, false, out);
        out.push((a, a + k));
    }
}

/// The ranges of an inclusion proof for leaf `index` in a tree of `size`.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    path_ranges(index, 0, size, &mut out);
    out
}

/// The ranges of a consistency proof from `first` to `second` leaves.
pub fn consistency_ranges(first: u64, second: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof_ranges(first, 0, second, true, &mut out);
    }
    out
}

/// Every stored subtree the given ranges need.
pub fn nodes_for(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = ranges.iter().flat_map(|(a, b)| decompose(*a, *b)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The root of a tree over `leaves` (the RFC definition, iteratively).
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    // Combine perfect subtrees as they complete, like the log does.
    let mut stack: Vec<(u32, Hash)> = Vec::new();
    for leaf in leaves {
        let mut node = (0u32, *leaf);
        while let Some((level, left)) = stack.last().copied() {
            if level != node.0 {
                break;
            }
            stack.pop();
            node = (level + 1, node_hash(&left, &node.1));
        }
        stack.push(node);
    }
    let mut acc = stack.pop().map(|(_, h)| h).unwrap_or_else(empty_root);
    while let Some((_, left)) = stack.pop() {
        acc = node_hash(&left, &acc);
    }
    acc
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of
/// `size` with `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `first` leaves with
/// `first_root` is a prefix of the tree of `second` leaves with `second_root`?
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if first > second || proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    &fr == first_root && &sr == second_root && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's recursive MTH, straight from its definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// Perfect subtree hashes as the log stores them.
    fn stored(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
        let mut nodes = HashMap::new();
        for (i, leaf) in leaves.iter().enumerate() {
            nodes.insert((0, i as u64), *leaf);
        }
        let mut level = 0;
        loop {
            let mut made = false;
            let mut i = 0;
            while let (Some(l), Some(r)) = (
                nodes.get(&(level, 2 * i)).copied(),
                nodes.get(&(level, 2 * i + 1)).copied(),
            ) {
                nodes.insert((level + 1, i), node_hash(&l, &r));
                made = true;
                i += 1;
            }
            if !made {
                return nodes;
            }
            level += 1;
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn roots_agree_with_the_recursive_definition() {
        for n in 0..70 {
            let l = leaves(n);
            let nodes = stored(&l);
            assert_eq!(root_from_leaves(&l), mth(&l), "n={n}");
            assert_eq!(range_hash(0, n as u64, &nodes), Some(mth(&l)), "n={n}");
        }
    }

    #[test]
    fn rfc6962_empty_and_single_leaf_roots() {
        // Known values: the empty tree and one empty leaf.
        let hex = |h: Hash| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_tampering_fails() {
        for n in 1..40u64 {
            let l = leaves(n as usize);
            let nodes = stored(&l);
            let root = mth(&l);
            for m in 0..n {
                let proof: Vec<Hash> = inclusion_ranges(m, n)
                    .iter()
                    .map(|(a, b)| range_hash(*a, *b, &nodes).expect("stored"))
                    .collect();
                assert!(
                    verify_inclusion(m, n, &l[m as usize], &proof, &root),
                    "m={m} n={n}"
                );
                assert!(!verify_inclusion(m, n, &leaf_hash(b"other"), &proof, &root));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(
                        !verify_inclusion(m, n, &l[m as usize], &bad, &root),
                        "{first:?}"
                    );
                }
            }
            for m in 1..=n {
                let proof: Vec<Hash> = consistency_ranges(m, n)
                    .iter()
                    .map(|(a, b)| range_hash(*a, *b, &nodes).expect("stored"))
                    .collect();
                let old = mth(&l[..m as usize]);
                assert!(verify_consistency(m, n, &old, &root, &proof), "m={m} n={n}");
                if m < n {
                    let forged = leaf_hash(b"rewritten history");
                    assert!(!verify_consistency(m, n, &forged, &root, &proof));
                }
            }
        }
    }
}
