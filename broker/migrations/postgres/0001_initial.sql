-- Keyferry schema v1 (PostgreSQL). Times are Unix milliseconds; booleans 0/1;
-- JSON documents are TEXT. Keep in step with ../sqlite/0001_initial.sql.
CREATE TABLE adtechs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    sites       TEXT NOT NULL,            -- JSON array of https origins
    use_cases   TEXT NOT NULL,            -- JSON array of use-case names
    enabled     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE issuers (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    issuer      TEXT NOT NULL UNIQUE,
    document    TEXT NOT NULL,            -- JSON: the full issuer entry
    created_at  BIGINT NOT NULL
);

CREATE TABLE mappings (
    id          TEXT PRIMARY KEY,
    adtech      TEXT NOT NULL REFERENCES adtechs(id),
    cloud       TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    conditions  TEXT NOT NULL,            -- JSON array
    scopes      TEXT NOT NULL,            -- JSON array
    enabled     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX mappings_by_subject ON mappings (issuer, subject);
CREATE INDEX mappings_by_adtech ON mappings (adtech);

CREATE TABLE keys (
    id               TEXT PRIMARY KEY,
    use_case         TEXT NOT NULL,
    status           TEXT NOT NULL,       -- pending | active | retired | revoked
    public_key       BYTEA NOT NULL,       -- raw X25519
    public_keyset    TEXT NOT NULL,       -- Tink JSON
    creation_time    BIGINT NOT NULL,
    activation_time  BIGINT NOT NULL,
    expiration_time  BIGINT NOT NULL,
    ttl_time         BIGINT NOT NULL
);
CREATE INDEX keys_by_use_case ON keys (use_case, status, expiration_time);

CREATE TABLE key_splits (
    key_id      TEXT NOT NULL REFERENCES keys(id),
    kek_uri     TEXT NOT NULL,            -- storage KEK or a workload cloud's KEK
    ciphertext  BYTEA NOT NULL,            -- the split, wrapped; never plaintext
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, kek_uri)
);

CREATE TABLE nonces (
    nonce       BYTEA PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL             -- JSON; never a secret
);
