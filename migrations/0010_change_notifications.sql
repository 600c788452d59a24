-- Announces changes to what the broker's read cache holds (broker/db/db-cache.c): token
-- checks read api_tokens and users, VM lists read vms and users. Each statement that
-- changes one of them notifies the channel "vmbroker_changed" once, at commit; every broker
-- LISTENs on it and drops its cache. A broker counts its own changes as well, so these are
-- for everyone else's: other replicas, the command line, an admin's psql.
--
-- api_tokens.last_used_at is bookkeeping the cache does not hold: its stamps stay quiet.
-- A new token needs no notification either (unknown tokens are never cached).

CREATE FUNCTION vmbroker_notify_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmbroker_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION vmbroker_notify_changed();

CREATE TRIGGER vms_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vms
    FOR EACH STATEMENT EXECUTE FUNCTION vmbroker_notify_changed();

CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF user_id, secret_hash, expires_at, revoked_at OR DELETE OR TRUNCATE
    ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION vmbroker_notify_changed();
