-- Whether a host's libvirt answered the broker that watches it, as that broker last saw:
-- false from a lost connection until a reconnect and full resync. While false its VMs show
-- `unknown` reachability rather than a state nobody can check. VM lists show it, so a change
-- notifies the read caches of every broker (0010).
ALTER TABLE hosts ADD COLUMN reachable boolean NOT NULL DEFAULT true;

CREATE TRIGGER hosts_reachable_changed
    AFTER UPDATE OF reachable ON hosts
    FOR EACH STATEMENT EXECUTE FUNCTION vmbroker_notify_changed();
