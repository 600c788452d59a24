-- When the guest first showed something on its screen after its latest start (a
-- framebuffer that is not one flat colour, seen through libvirt's screenshot): the moment a
-- person at the console sees a desktop, BIOS or boot loader rather than nothing. NULL while
-- the VM starts, is stopped, or was never seen ready (a watch gives up after a while).
ALTER TABLE vms ADD COLUMN console_ready_at timestamptz;

-- The event stream tells it too: a dashboard waiting for a desktop opens the console then.
CREATE OR REPLACE FUNCTION events_vm() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r vms%ROWTYPE;
BEGIN
    r := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    INSERT INTO events (kind, vm_id, owner_id, payload)
    VALUES ('vm', r.id, r.owner_id,
            jsonb_build_object('id', r.id, 'name', r.name, 'state', r.state,
                               'state_reason', r.state_reason,
                               'console_ready_at', r.console_ready_at,
                               'deleted', TG_OP = 'DELETE'));
    PERFORM pg_notify('vmbroker_events', '');
    RETURN NULL;
END
$$;

DROP TRIGGER vms_event_update ON vms;
CREATE TRIGGER vms_event_update AFTER UPDATE ON vms
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR OLD.state_reason IS DISTINCT FROM NEW.state_reason
          OR OLD.console_ready_at IS DISTINCT FROM NEW.console_ready_at)
    EXECUTE FUNCTION events_vm();
