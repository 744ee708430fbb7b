-- migrate:up
-- Four indexes of rk_instances keep only the rows their queries look for: pending instances
-- (the claim), running ones (expired leases), leased ones (a worker's instances), children (a
-- parent's). A running instance's step then changes no entry of the claim index (its
-- updated_at moves on every step), an ended instance leaves the lease and owner indexes, and
-- an instance is no entry of the parent index unless it has a parent: less index upkeep per
-- step, and indexes that stay small as ended instances pile up. Every query that used them
-- names the same condition (status = 'pending', status = 'running', lease_owner = ...,
-- parent_id = ...), so the planner still uses them. Run while no worker writes: rebuilding an
-- index locks the table against writes for as long as it takes.
DROP INDEX rk_instances_claim;
CREATE INDEX rk_instances_claim ON rk_instances (updated_at) WHERE status = 'pending';
DROP INDEX rk_instances_lease;
CREATE INDEX rk_instances_lease ON rk_instances (lease_expires_at) WHERE status = 'running';
DROP INDEX rk_instances_owner;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner) WHERE lease_owner IS NOT NULL;
DROP INDEX rk_instances_parent;
CREATE INDEX rk_instances_parent ON rk_instances (parent_id) WHERE parent_id IS NOT NULL;

-- migrate:down
DROP INDEX rk_instances_parent;
CREATE INDEX rk_instances_parent ON rk_instances (parent_id);
DROP INDEX rk_instances_owner;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner);
DROP INDEX rk_instances_lease;
CREATE INDEX rk_instances_lease ON rk_instances (status, lease_expires_at);
DROP INDEX rk_instances_claim;
CREATE INDEX rk_instances_claim ON rk_instances (status, updated_at);
