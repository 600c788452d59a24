-- Hosts become objects admins manage (`vmbroker host ...`, /api/v1/hosts): where QEMU's
-- consoles listen on the host, its port ranges (the rows of port_leases follow them), its
-- memory budget, and whether it takes new VMs. The host of the config file (`local`: the
-- configured libvirt.uri and console.*) is brought in line with the config at every start;
-- only `enabled` is kept from the database for it.
ALTER TABLE hosts
    ADD COLUMN console_address text NOT NULL DEFAULT '127.0.0.1'
        CHECK (length(console_address) BETWEEN 1 AND 255),
    ADD COLUMN vnc_first integer NOT NULL DEFAULT 5900 CHECK (vnc_first BETWEEN 1 AND 65535),
    ADD COLUMN vnc_last  integer NOT NULL DEFAULT 5999 CHECK (vnc_last BETWEEN 1 AND 65535),
    ADD COLUMN ws_first  integer NOT NULL DEFAULT 5700 CHECK (ws_first BETWEEN 1 AND 65535),
    ADD COLUMN ws_last   integer NOT NULL DEFAULT 5799 CHECK (ws_last BETWEEN 1 AND 65535),
    -- Guests' memory there at most; NULL for no budget.
    ADD COLUMN memory_mib bigint CHECK (memory_mib IS NULL OR memory_mib > 0),
    ADD COLUMN enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN from_config boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT hosts_ranges CHECK (vnc_first <= vnc_last AND ws_first <= ws_last
                                       AND (vnc_last < ws_first OR ws_last < vnc_first));

-- Every host up to now was the configured one.
UPDATE hosts SET from_config = true;

-- At most one host follows the config file.
CREATE UNIQUE INDEX hosts_one_from_config ON hosts (from_config) WHERE from_config;
