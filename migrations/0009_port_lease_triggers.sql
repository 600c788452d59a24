-- A VM's ports are leases it holds: checked by two deferred constraint triggers instead of
-- the foreign keys from vms to port_leases' holder keys (0006).
--
-- Why: those keys made every lease and release write two more index entries (mostly NULLs,
-- never HOT) and made each release queue foreign-key checks; with the NULL entries of
-- port_leases_one_per_kind they doubled what a lease+release cycle cost PostgreSQL. The
-- triggers check the same thing at the same moment (the end of the transaction), and only
-- where it can fail: when a VM row names ports, and when a held lease is given up.
-- port_leases_one_per_kind becomes a unique index over held rows only: free rows no longer
-- add a NULL entry at each release.
--
-- Concurrency: the check takes FOR SHARE on the lease rows it finds, which conflicts with
-- the row lock of a release's UPDATE. Whichever of "the VM names the port" and "the lease is
-- given up" commits second sees the other and fails (tests/integration/test-db-vms.c).

ALTER TABLE vms
    DROP CONSTRAINT vms_vnc_leased,
    DROP CONSTRAINT vms_ws_leased;

ALTER TABLE port_leases
    DROP CONSTRAINT port_leases_vnc_key,
    DROP CONSTRAINT port_leases_ws_key,
    DROP COLUMN vnc_holder,
    DROP COLUMN ws_holder,
    DROP CONSTRAINT port_leases_one_per_kind;
CREATE UNIQUE INDEX port_leases_one_per_kind ON port_leases (vm_id, kind) WHERE vm_id IS NOT NULL;

-- Checks the VM's row as it is now, not as the event saw it: a row inserted with ports and
-- stopped later in the same transaction names none at commit.
CREATE FUNCTION vms_check_ports_leased(vm uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    named record;
BEGIN
    SELECT host_id, vnc_port, ws_port INTO v FROM vms WHERE id = vm;
    IF NOT FOUND OR v.vnc_port IS NULL THEN
        RETURN;
    END IF;
    FOR named IN SELECT * FROM (VALUES ('vnc', v.vnc_port), ('ws', v.ws_port)) AS n(kind, port)
    LOOP
        PERFORM 1 FROM port_leases
            WHERE host_id = v.host_id AND port = named.port AND kind = named.kind AND vm_id = vm
            FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'VM % names % port % without holding its lease',
                    vm, named.kind, named.port
                USING ERRCODE = 'foreign_key_violation',
                      CONSTRAINT = 'vms_' || named.kind || '_leased';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION vms_ports_leased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'vms' THEN
        PERFORM vms_check_ports_leased(NEW.id);
    ELSE
        PERFORM vms_check_ports_leased(OLD.vm_id);
    END IF;
    RETURN NULL;
END
$$;

-- vms_ports_paired: both ports or neither, so one non-NULL port means two to check.
CREATE CONSTRAINT TRIGGER vms_ports_leased
    AFTER INSERT OR UPDATE OF id, host_id, vnc_port, ws_port ON vms
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.vnc_port IS NOT NULL)
    EXECUTE FUNCTION vms_ports_leased();

-- A held lease given up (or moved, or deleted): its VM must not name the port any more,
-- unless it holds the port again by the end of the transaction.
CREATE CONSTRAINT TRIGGER port_leases_released
    AFTER UPDATE OF vm_id, host_id, port, kind OR DELETE ON port_leases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.vm_id IS NOT NULL)
    EXECUTE FUNCTION vms_ports_leased();

