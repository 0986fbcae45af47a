"""An independent RFC 9162 verifier for Keyferry's audit log tests.

Written from the RFC text, sharing no code with the broker: computes MTH over
the given entries by the recursive definition (§2.1.1), and checks inclusion
(§2.1.3.2) and consistency (§2.1.4.2) proofs. Reads JSON on stdin:
  {"entries": ["<canonical JSON>", ...],
   "inclusion": [{"index", "treeSize", "path": [b64...]}],
   "consistency": [{"first", "second", "proof": [b64...]}]}
Prints {"roots": {"<size>": b64}, "inclusion": [bool], "consistency": [bool]}.
"""
import base64
import hashlib
import json
import sys


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf_hash, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if first > second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def main():
    req = json.load(sys.stdin)
    leaves = [leaf(e.encode()) for e in req["entries"]]
    roots = {}
    sizes = {len(leaves)}
    sizes |= {i["treeSize"] for i in req.get("inclusion", [])}
    sizes |= {c["first"] for c in req.get("consistency", [])} | {c["second"] for c in req.get("consistency", [])}
    for size in sizes:
        roots[size] = mth(leaves[:size])
    out = {"roots": {str(s): base64.b64encode(r).decode() for s, r in roots.items()}}
    out["inclusion"] = [
        verify_inclusion(i["index"], i["treeSize"], leaves[i["index"]],
                         [base64.b64decode(p) for p in i["path"]], roots[i["treeSize"]])
        for i in req.get("inclusion", [])
    ]
    out["consistency"] = [
        verify_consistency(c["first"], c["second"], roots[c["first"]], roots[c["second"]],
                           [base64.b64decode(p) for p in c["proof"]])
        for c in req.get("consistency", [])
    ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
