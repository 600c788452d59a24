-- The audit log becomes readable (GET /api/v1/audit, `vmbroker audit`): newest first, paged
-- by id, filtered by actor, object and action. `origin` says which program wrote a row:
-- 'cli:<OS user>' for the command line, which acts as an admin with no users row of its own;
-- NULL for the daemon (an API caller is actor_id, the system is no actor).
ALTER TABLE audit_log ADD COLUMN origin text CHECK (length(origin) BETWEEN 1 AND 100);

CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
