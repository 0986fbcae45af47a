-- Mutual log witnessing (DESIGN §7.2). `witness_state` is what this
-- coordinator last accepted of its peer's log (at most one row: one peer):
-- the last head that extended every earlier one, and why a later head was
-- refused. `audit_cosignatures` holds the peer's co-signatures of this
-- log's own heads, only of heads in `audit_heads`, the newest kept.
CREATE TABLE witness_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    log             TEXT NOT NULL,
    head            TEXT,          -- the SignedTreeHead, JSON
    failure         TEXT,          -- the WitnessFailure, JSON
    checked_at      BIGINT
);

CREATE TABLE audit_cosignatures (
    tree_size    BIGINT NOT NULL,
    witness_key  TEXT NOT NULL,
    cosignature  TEXT NOT NULL,    -- the Cosignature, JSON
    PRIMARY KEY (tree_size, witness_key)
);
