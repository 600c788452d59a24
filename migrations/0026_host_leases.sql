-- Which broker watches each host: one at a time follows a host's libvirt events and runs its
-- periodic sync and reconciliation, while its lease row says so (expires_at, renewed every
-- few seconds). Another broker takes over a lease that expired, which bumps the fencing
-- epoch; every repair a reconciler writes checks in its transaction that its owner still
-- holds the lease at its epoch (the row lock it takes makes a takeover wait for it).
CREATE TABLE host_leases (
    host_id    uuid PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    owner      text NOT NULL CHECK (length(owner) BETWEEN 1 AND 200),
    epoch      bigint NOT NULL CHECK (epoch > 0),
    expires_at timestamptz NOT NULL
);
