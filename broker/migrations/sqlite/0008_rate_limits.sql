-- Token exchanges per workload identity and minute, shared by every replica
-- on one PostgreSQL (a SQLite broker is one instance and counts in memory).
-- `bucket` is the hex SHA-256 of the identity, so its size is fixed.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
