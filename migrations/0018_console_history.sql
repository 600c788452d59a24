-- One row per console websocket a broker relayed: who, from which address, when it opened
-- and closed, why it closed and the bytes each way, for GET /api/v1/vms/{id}/connections.
-- Rows go with their VM; each VM keeps its newest 100. A row that a broker could not close
-- (it died) is closed when the VM stops, with the VM's state reason.
CREATE TABLE console_history (
    id          uuid PRIMARY KEY,
    vm_id       uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    remote_addr inet,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    reason      text CHECK (length(reason) <= 200),
    bytes_in    bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
    bytes_out   bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0)
);
CREATE INDEX console_history_vm_idx ON console_history (vm_id, opened_at DESC);
CREATE INDEX console_history_open_idx ON console_history (vm_id) WHERE closed_at IS NULL;
