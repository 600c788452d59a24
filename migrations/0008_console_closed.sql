-- Why vmbroker itself last closed a VM's console connections (another viewer took over an
-- exclusive console, the VM stopped or was deleted), so a page that lost its connection can
-- tell its user.
ALTER TABLE vms ADD COLUMN console_closed_reason text
    CHECK (length(console_closed_reason) <= 200);
ALTER TABLE vms ADD COLUMN console_closed_at timestamptz;
