-- Where each key's entry is in this coordinator's log (DESIGN §4.4), so the
-- signed public key manifest can prove it: the Type-1's `key.activated`,
-- the Type-2's `key.received`. Written in the audit transaction that
-- appends the entry; one row per key and kind (the first entry wins).
CREATE TABLE audit_key_entries (
    key_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    PRIMARY KEY (key_id, kind)
);
