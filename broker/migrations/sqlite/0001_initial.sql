-- Keyferry schema v1 (SQLite). Times are Unix milliseconds; booleans 0/1;
-- JSON documents are TEXT. Keep in step with ../postgres/0001_initial.sql.
CREATE TABLE adtechs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    sites       TEXT NOT NULL,            -- JSON array of https origins
    use_cases   TEXT NOT NULL,            -- JSON array of use-case names
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE issuers (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    issuer      TEXT NOT NULL UNIQUE,
    document    TEXT NOT NULL,            -- JSON: the full issuer entry
    created_at  INTEGER NOT NULL
);

CREATE TABLE mappings (
    id          TEXT PRIMARY KEY,
    adtech      TEXT NOT NULL REFERENCES adtechs(id),
    cloud       TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    conditions  TEXT NOT NULL,            -- JSON array
    scopes      TEXT NOT NULL,            -- JSON array
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX mappings_by_subject ON mappings (issuer, subject);
CREATE INDEX mappings_by_adtech ON mappings (adtech);

CREATE TABLE keys (
    id               TEXT PRIMARY KEY,
    use_case         TEXT NOT NULL,
    status           TEXT NOT NULL,       -- pending | active | retired | revoked
    public_key       BLOB NOT NULL,       -- raw X25519
    public_keyset    TEXT NOT NULL,       -- Tink JSON
    creation_time    INTEGER NOT NULL,
    activation_time  INTEGER NOT NULL,
    expiration_time  INTEGER NOT NULL,
    ttl_time         INTEGER NOT NULL
);
CREATE INDEX keys_by_use_case ON keys (use_case, status, expiration_time);

CREATE TABLE key_splits (
    key_id      TEXT NOT NULL REFERENCES keys(id),
    kek_uri     TEXT NOT NULL,            -- storage KEK or a workload cloud's KEK
    ciphertext  BLOB NOT NULL,            -- the split, wrapped; never plaintext
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (key_id, kek_uri)
);

CREATE TABLE nonces (
    nonce       BLOB PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL             -- JSON; never a secret
);
