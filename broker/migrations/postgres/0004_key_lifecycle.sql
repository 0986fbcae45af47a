-- Key lifecycle (DESIGN §4). A Type-1 coordinator keeps, for a pending key,
-- split B sealed (HPKE) to the Type-2's handover key: it can retry the
-- handover after a restart without ever holding split B in a form it could
-- read. The column is cleared once the Type-2 acknowledges.
ALTER TABLE keys ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN peer_signature TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN handover BYTEA;
ALTER TABLE keys ADD COLUMN handover_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN revoked_at BIGINT;
CREATE INDEX keys_by_status ON keys (status, next_attempt_at);

-- Counters for `sequence` key ids, per use case.
CREATE TABLE key_sequences (
    use_case    TEXT PRIMARY KEY,
    next_value  BIGINT NOT NULL
);

-- Coordinator secrets (handover key, public-key signer), wrapped by the
-- storage KEK.
CREATE TABLE wrapped_secrets (
    name        TEXT PRIMARY KEY,
    kek_uri     TEXT NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Small non-secret state, e.g. the peer's published keys.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

INSERT INTO locks (name, held_at) VALUES ('key_generation', 0);
