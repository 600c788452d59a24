-- VM ports reference per-kind holder keys of port_leases instead of (vm_id, kind, ...).
-- With the kind inside the referenced key, a release fired both of a VM's foreign keys on
-- both of its rows: four checks at commit. vnc_holder/ws_holder hold the VM id for rows of
-- that kind and NULL otherwise, so each released row is checked once, by its own kind's key.
-- Same guarantees: a VM's ports are leases of the right kind that it holds.

ALTER TABLE vms
    DROP CONSTRAINT vms_vnc_leased,
    DROP CONSTRAINT vms_ws_leased;

ALTER TABLE port_leases
    ADD COLUMN vnc_holder uuid GENERATED ALWAYS AS (CASE WHEN kind = 'vnc' THEN vm_id END) STORED,
    ADD COLUMN ws_holder uuid GENERATED ALWAYS AS (CASE WHEN kind = 'ws' THEN vm_id END) STORED,
    DROP CONSTRAINT port_leases_vm_key,
    ADD CONSTRAINT port_leases_vnc_key UNIQUE (vnc_holder, host_id, port),
    ADD CONSTRAINT port_leases_ws_key UNIQUE (ws_holder, host_id, port);

ALTER TABLE vms
    ADD CONSTRAINT vms_vnc_leased FOREIGN KEY (id, host_id, vnc_port)
        REFERENCES port_leases (vnc_holder, host_id, port) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT vms_ws_leased FOREIGN KEY (id, host_id, ws_port)
        REFERENCES port_leases (ws_holder, host_id, port) DEFERRABLE INITIALLY DEFERRED,
    DROP COLUMN vnc_kind,
    DROP COLUMN ws_kind;
