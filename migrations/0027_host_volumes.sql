-- The ISOs and base images copied to a host other than the config file's, through libvirt's
-- upload stream: a row is written once the copy read back with the SHA-256 it must have, so
-- a volume found without its row (a copy cut short) is made again, not booted.
CREATE TABLE host_volumes (
    host_id   uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    pool      text NOT NULL CHECK (pool IN ('isos', 'base')),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    sha256    text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    copied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, pool, name)
);
