-- Named locks: a transaction that updates a lock's row first holds it until
-- commit, on SQLite (the write lock) and PostgreSQL (the row lock) alike.
CREATE TABLE locks (
    name     TEXT PRIMARY KEY,
    held_at  INTEGER NOT NULL
);
INSERT INTO locks (name, held_at) VALUES ('signing_keys', 0);

-- The broker issuer's ES256 keys; the private key only wrapped by the
-- storage KEK. Retirement is derived from the successor's not_before.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    kek_uri      TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL
);
