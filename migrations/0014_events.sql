-- What a browser's event stream (GET /api/v1/events) tells: every change of a VM's state and
-- of an operation's state or step, as rows with a global order (id), written by triggers so
-- that nothing that changes a VM can forget to announce it, whichever broker (or psql) made
-- the change. Each broker LISTENs on "vmbroker_events", reads the new rows and hands each to
-- the streams allowed to see it: the VM's owner, who asked for the operation, admins and
-- service accounts. A client resumes with Last-Event-ID; the janitor deletes old rows.

CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    kind         text NOT NULL CHECK (kind IN ('vm', 'operation')),
    vm_id        uuid NOT NULL,
    owner_id     uuid,          -- the VM's owner then (NULL once the VM is gone)
    requested_by uuid,          -- for an operation: who asked
    payload      jsonb NOT NULL
);
CREATE INDEX events_at_idx ON events (at);

CREATE FUNCTION events_vm() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r vms%ROWTYPE;
BEGIN
    r := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    INSERT INTO events (kind, vm_id, owner_id, payload)
    VALUES ('vm', r.id, r.owner_id,
            jsonb_build_object('id', r.id, 'name', r.name, 'state', r.state,
                               'state_reason', r.state_reason,
                               'deleted', TG_OP = 'DELETE'));
    PERFORM pg_notify('vmbroker_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER vms_event_insert AFTER INSERT ON vms
    FOR EACH ROW EXECUTE FUNCTION events_vm();
CREATE TRIGGER vms_event_update AFTER UPDATE ON vms
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR OLD.state_reason IS DISTINCT FROM NEW.state_reason)
    EXECUTE FUNCTION events_vm();
CREATE TRIGGER vms_event_delete AFTER DELETE ON vms
    FOR EACH ROW EXECUTE FUNCTION events_vm();

CREATE FUNCTION events_operation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (kind, vm_id, owner_id, requested_by, payload)
    VALUES ('operation', NEW.vm_id, (SELECT owner_id FROM vms WHERE id = NEW.vm_id),
            NEW.requested_by,
            jsonb_build_object('id', NEW.id, 'vm_id', NEW.vm_id, 'kind', NEW.kind,
                               'state', NEW.state, 'step', NEW.step,
                               'progress', NEW.progress,
                               'error', CASE WHEN NEW.error_kind IS NULL THEN NULL ELSE
                                   jsonb_build_object('kind', NEW.error_kind,
                                                      'detail', NEW.error_detail) END));
    PERFORM pg_notify('vmbroker_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER operations_event AFTER INSERT OR UPDATE OF state, step, progress ON operations
    FOR EACH ROW EXECUTE FUNCTION events_operation();
