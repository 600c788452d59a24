-- Console sessions: what a browser holds after redeeming a console_url's page ticket, so a
-- reload, a second tab or a dropped network can reconnect without a fresh link. A session
-- opens only its VM's console (fresh websocket tickets and the VNC password), ends when idle
-- or at its absolute expiry, and goes with its user or a revocation.
CREATE TABLE console_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash  text NOT NULL UNIQUE CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No reference: a session outlives its VM's row, so the page can say the VM was deleted
    -- rather than that access ended; VM ids are never reused and the janitor purges it.
    vm_id        uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_vm_idx ON console_sessions (vm_id, user_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
