-- Operator bearer tokens (the dev bootstrap token): only their SHA-256.
CREATE TABLE admin_tokens (
    token_hash  BYTEA PRIMARY KEY,
    role        TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Serialises onboarding's overlap check with the insert it guards.
INSERT INTO locks (name, held_at) VALUES ('mappings', 0);
