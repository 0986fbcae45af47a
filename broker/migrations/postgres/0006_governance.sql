-- Governance of release policies (DESIGN §7.3): members with public keys,
-- a threshold M, proposals identified by the digest members sign, and one
-- ballot per member and proposal. A proposal is applied in the transaction
-- that records its M-th valid ballot.
CREATE TABLE gov_members (
    name        TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,      -- Ed25519, base64 of the 32 raw bytes
    added_at    BIGINT NOT NULL
);

CREATE TABLE gov_proposals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,      -- release_policy | add_member | remove_member | set_threshold
    body        TEXT NOT NULL,      -- canonical JSON (RFC 8785) of what is proposed
    digest      TEXT NOT NULL,      -- hex SHA-256 of the signed proposal document
    status      TEXT NOT NULL,      -- open | applied | expired | superseded
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    applied_at  BIGINT
);
CREATE INDEX gov_proposals_by_status ON gov_proposals (status, expires_at);

CREATE TABLE gov_ballots (
    proposal_id TEXT NOT NULL REFERENCES gov_proposals(id),
    member      TEXT NOT NULL,
    signature   TEXT NOT NULL,      -- Ed25519 over the ballot message, base64
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, member)
);

-- The release policy in force per use case, once governance has applied
-- one (before that, the policy file named in the configuration).
CREATE TABLE release_policies (
    use_case     TEXT PRIMARY KEY,
    policy       TEXT NOT NULL,     -- canonical JSON
    digest       TEXT NOT NULL,
    proposal_id  TEXT NOT NULL,
    applied_at   BIGINT NOT NULL
);

INSERT INTO locks (name, held_at) VALUES ('governance', 0);
