-- One-time console tickets and the audit log.

CREATE TABLE console_tickets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash text NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    vm_id       uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    -- DESIGN.md: a ticket lives 60 s at most.
    CHECK (expires_at > created_at AND expires_at <= created_at + interval '60 seconds'),
    CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX console_tickets_vm_idx ON console_tickets (vm_id);
CREATE INDEX console_tickets_expires_idx ON console_tickets (expires_at);

-- Who did what to which object, when, from where. Rows outlive the users and objects
-- they name, so the references are plain values (actor_id is set NULL on user deletion).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    action      text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    object_kind text NOT NULL CHECK (object_kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    object_id   text CHECK (length(object_id) <= 200),
    remote_addr inet,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object')
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_object_idx ON audit_log (object_kind, object_id);
