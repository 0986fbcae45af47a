-- The Type-2's key-generation policy (DESIGN §4.3) as governance applied
-- it: at most one row. Until there is one, the configuration's file (or,
-- in dev, the simulated key generator's measurement) is in force.
CREATE TABLE key_generation_policy (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    policy       TEXT NOT NULL,     -- canonical JSON
    digest       TEXT NOT NULL,
    proposal_id  TEXT NOT NULL,
    applied_at   INTEGER NOT NULL
);
