-- Warm pools: guests of a template kept booted, owned by the account `vmbroker-pool`, for
-- creates to take. The size an admin sets through the API overrides the template's
-- `warm_pool`; without a row the template's counts.
CREATE TABLE pools (
    template_name text PRIMARY KEY REFERENCES templates (name) ON DELETE CASCADE,
    size          integer NOT NULL CHECK (size BETWEEN 0 AND 64),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A guest taken from a pool changes hands while it runs: its new owner's event stream
-- learns of it.
DROP TRIGGER vms_event_update ON vms;
CREATE TRIGGER vms_event_update AFTER UPDATE ON vms
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR OLD.state_reason IS DISTINCT FROM NEW.state_reason
          OR OLD.console_ready_at IS DISTINCT FROM NEW.console_ready_at
          OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION events_vm();
