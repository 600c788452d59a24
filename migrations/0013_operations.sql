-- Every change of a VM's state that takes time is an operation: a row written by the request
-- (with the VM row and its leases, for a create), taken by one broker's worker with
-- FOR UPDATE SKIP LOCKED, and finished or failed there. At most one operation per VM is
-- active (queued or running); a second request conflicts at once on the unique index.
--
-- vm_id has no foreign key: an operation outlives its VM (a delete's own row says it
-- succeeded after the VM row is gone). requested_by is NULL for the system (the reaper).
-- A running operation names its broker and carries a heartbeat; one whose heartbeat stopped
-- is taken over by any broker.

CREATE TABLE operations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vm_id        uuid NOT NULL,
    kind         text NOT NULL
                 CHECK (kind IN ('create', 'start', 'stop', 'reboot', 'delete', 'snapshot',
                                 'migrate')),
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    remote_addr  text,
    params       jsonb NOT NULL DEFAULT '{}',
    step         text NOT NULL DEFAULT 'queued',
    progress     smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error_kind   text,
    error_detail text,          -- for the user
    error_admin  text,          -- for admins and the log: may name libvirt's words
    broker       text,
    heartbeat_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

CREATE UNIQUE INDEX operations_one_active_idx ON operations (vm_id)
    WHERE state IN ('queued', 'running');
CREATE INDEX operations_queued_idx ON operations (created_at) WHERE state = 'queued';
CREATE INDEX operations_vm_idx ON operations (vm_id, created_at);
CREATE INDEX operations_requested_active_idx ON operations (requested_by)
    WHERE state IN ('queued', 'running');

-- Brokers wake their workers on this channel; the payload is the operation's id.
CREATE FUNCTION operations_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmbroker_operations', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER operations_changed
    AFTER INSERT OR UPDATE OF state ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_notify();
