-- Hypervisor hosts, templates as loaded from templates.dir, and uploaded ISOs.
-- One host (`local`) for now; leases and VMs are per host so more can join later.

CREATE TABLE hosts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    uri        text NOT NULL CHECK (length(uri) BETWEEN 1 AND 1000),  -- libvirt URI
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A template as last loaded; version grows by one whenever the file's content changes, so
-- a VM records exactly which definition it was made from.
CREATE TABLE templates (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    version    integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    kind       text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    definition text NOT NULL,            -- the file's text as loaded
    loaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE isos (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),  -- the uploader's label
    -- One row (and one volume) per content: a second upload of the same bytes finds it.
    sha256     text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint NOT NULL CHECK (size > 0),
    volume     text NOT NULL UNIQUE CHECK (length(volume) BETWEEN 1 AND 255),
    -- public: uploaded by an admin or service account, usable by every user.
    visibility text NOT NULL CHECK (visibility IN ('private', 'public')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX isos_owner_idx ON isos (owner_id);
