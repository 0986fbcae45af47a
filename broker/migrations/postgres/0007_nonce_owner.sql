-- A challenge nonce belongs to the credential that asked for it (its `sub`
-- and ad tech): a release that presents it under another credential is
-- refused. Nonces issued before this migration have no owner and match none.
ALTER TABLE nonces ADD COLUMN adtech TEXT NOT NULL DEFAULT '';
ALTER TABLE nonces ADD COLUMN subject TEXT NOT NULL DEFAULT '';
