-- VMs and the port leases they hold. The constraints make impossible states unstorable:
-- a port leased twice, a VM with one port and not the other, a VM whose ports are not
-- leased to it, a lease held by a VM that no longer exists, and (when the limit is set in
-- broker_limits) more running VMs per user than allowed.

-- One row, synced from the config at start. NULL: the limit is not enforced in SQL.
CREATE TABLE broker_limits (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    max_running_per_user integer CHECK (max_running_per_user >= 0)
);
INSERT INTO broker_limits (id, max_running_per_user) VALUES (true, NULL);

CREATE TABLE vms (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'),
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    template_name    text NOT NULL REFERENCES templates (name) ON DELETE RESTRICT,
    template_version integer NOT NULL CHECK (template_version >= 1),
    iso_id           uuid REFERENCES isos (id) ON DELETE RESTRICT,
    host_id          uuid NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
    domain_uuid      uuid UNIQUE,           -- set once libvirt has defined the domain
    state            text NOT NULL DEFAULT 'creating'
                     CHECK (state IN ('creating', 'running', 'stopping', 'stopped', 'error')),
    state_reason     text CHECK (length(state_reason) <= 1000),  -- why: reaper, admin, user...
    vnc_port         integer,
    ws_port          integer,
    -- Constant kinds, so the foreign keys below can name the lease's kind.
    vnc_kind         text NOT NULL GENERATED ALWAYS AS ('vnc') STORED,
    ws_kind          text NOT NULL GENERATED ALWAYS AS ('ws') STORED,
    disk_volumes     text[] NOT NULL DEFAULT '{}',   -- ephemeral volumes, dropped with the VM
    console_connections integer NOT NULL DEFAULT 0 CHECK (console_connections >= 0),
    console_last_activity_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    stopped_at       timestamptz,
    CONSTRAINT vms_ports_paired CHECK ((vnc_port IS NULL) = (ws_port IS NULL)),
    CONSTRAINT vms_ports_distinct CHECK (vnc_port <> ws_port),
    -- A VM being made, running or stopping holds its ports; a stopped one holds none.
    CONSTRAINT vms_ports_match_state CHECK (
        CASE state WHEN 'stopped' THEN vnc_port IS NULL
                   WHEN 'error' THEN true
                   ELSE vnc_port IS NOT NULL END)
);
CREATE INDEX vms_owner_idx ON vms (owner_id);
CREATE INDEX vms_owner_active_idx ON vms (owner_id) WHERE state IN ('creating', 'running');

-- One row per (host, port) of the configured ranges. The port alone is the key within a
-- host, so a port can be leased once whatever its kind.
CREATE TABLE port_leases (
    host_id           uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    port              integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    kind              text NOT NULL CHECK (kind IN ('vnc', 'ws')),
    -- Checked at commit: a VM cannot be deleted while it still holds a lease, and the
    -- create transaction leases before it inserts the VM.
    vm_id             uuid REFERENCES vms (id) DEFERRABLE INITIALLY DEFERRED,
    leased_at         timestamptz,
    released_at       timestamptz,
    -- Not leasable before this: a slow QEMU exit must not collide with the next guest.
    cooldown_until    timestamptz,
    -- A foreign process held the port when it was probed: skipped until then.
    quarantined_until timestamptz,
    -- false: the configured ranges no longer hold this port; it is dropped on release.
    in_range          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (host_id, port),
    CONSTRAINT port_leases_held CHECK ((vm_id IS NULL) = (leased_at IS NULL)),
    CONSTRAINT port_leases_one_per_kind UNIQUE (vm_id, kind),
    CONSTRAINT port_leases_vm_key UNIQUE (vm_id, kind, host_id, port)
);
-- The free rows of a (host, kind), least recently released first.
CREATE INDEX port_leases_free_idx ON port_leases (host_id, kind, released_at NULLS FIRST, port)
    WHERE vm_id IS NULL AND in_range;

-- A VM's ports are exactly the leases it holds (checked at commit).
ALTER TABLE vms
    ADD CONSTRAINT vms_vnc_leased FOREIGN KEY (id, vnc_kind, host_id, vnc_port)
        REFERENCES port_leases (vm_id, kind, host_id, port) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT vms_ws_leased FOREIGN KEY (id, ws_kind, host_id, ws_port)
        REFERENCES port_leases (vm_id, kind, host_id, port) DEFERRABLE INITIALLY DEFERRED;

-- The running limit: the owner's row is locked first, so two concurrent creates of one user
-- serialize and the second counts the first. Admins are exempt.
CREATE FUNCTION vms_check_running_limit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lim integer;
    role_ text;
    active integer;
BEGIN
    IF NEW.state NOT IN ('creating', 'running') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.state IN ('creating', 'running')
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
     WHERE owner_id = NEW.owner_id AND state IN ('creating', 'running') AND id <> NEW.id;
    IF active >= lim THEN
        RAISE EXCEPTION 'user already has % running VM(s), the limit is %', active, lim
            USING ERRCODE = 'check_violation', CONSTRAINT = 'vms_running_limit',
                  TABLE = 'vms';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER vms_running_limit BEFORE INSERT OR UPDATE OF state, owner_id ON vms
    FOR EACH ROW EXECUTE FUNCTION vms_check_running_limit();
