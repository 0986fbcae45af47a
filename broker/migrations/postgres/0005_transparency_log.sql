-- The audit transparency log (DESIGN §7.2). `audit_log` holds each entry's
-- canonical JSON; `audit_nodes` the hash of every complete perfect subtree
-- (level 0: leaf hashes), so roots and proofs never rescan the entries;
-- `audit_heads` the signed tree heads. The interim `audit_events` rows are
-- moved into the log by the broker at its first start on this schema.
CREATE TABLE audit_log (
    idx    BIGINT PRIMARY KEY,
    entry  TEXT NOT NULL
);

CREATE TABLE audit_nodes (
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_heads (
    tree_size  BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    timestamp  BIGINT NOT NULL,
    signature  BYTEA NOT NULL
);

INSERT INTO locks (name, held_at) VALUES ('audit', 0);
