-- Identical content is stored once (one volume per SHA-256), but each uploader gets a row of
-- their own, so a private ISO stays private when someone else uploads the same bytes.
ALTER TABLE isos DROP CONSTRAINT isos_sha256_key;
ALTER TABLE isos DROP CONSTRAINT isos_volume_key;
ALTER TABLE isos ADD CONSTRAINT isos_owner_sha256_key UNIQUE (owner_id, sha256);
CREATE INDEX isos_sha256_idx ON isos (sha256);
