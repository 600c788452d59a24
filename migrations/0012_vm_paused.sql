-- A VM whose guest libvirt reports paused (by QEMU on an internal or I/O error, or by
-- `virsh suspend`) is `paused`, with the reason in state_reason. It still has its QEMU
-- process, memory and ports, so it holds its ports (vms_ports_match_state: every state but
-- stopped and error must) and counts against the running limit like a running VM: its
-- resume must not be refused for a VM created meanwhile.

ALTER TABLE vms DROP CONSTRAINT vms_state_check;
ALTER TABLE vms ADD CONSTRAINT vms_state_check
    CHECK (state IN ('creating', 'running', 'paused', 'stopping', 'stopped', 'error'));

DROP INDEX vms_owner_active_idx;
CREATE INDEX vms_owner_active_idx ON vms (owner_id)
    WHERE state IN ('creating', 'running', 'paused');

CREATE OR REPLACE FUNCTION vms_check_running_limit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lim integer;
    role_ text;
    active integer;
BEGIN
    IF NEW.state NOT IN ('creating', 'running', 'paused') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.state IN ('creating', 'running', 'paused')
       AND OLD.owner_id = NEW.owner_id THEN
        RETURN NEW;
    END IF;
    SELECT max_running_per_user INTO lim FROM broker_limits;
    IF lim IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT role INTO role_ FROM users WHERE id = NEW.owner_id FOR NO KEY UPDATE;
    IF role_ = 'admin' THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO active FROM vms
     WHERE owner_id = NEW.owner_id AND state IN ('creating', 'running', 'paused')
       AND id <> NEW.id;
    IF active >= lim THEN
        RAISE EXCEPTION 'user already has % running VM(s), the limit is %', active, lim
            USING ERRCODE = 'check_violation', CONSTRAINT = 'vms_running_limit',
                  TABLE = 'vms';
    END IF;
    RETURN NEW;
END $$;
