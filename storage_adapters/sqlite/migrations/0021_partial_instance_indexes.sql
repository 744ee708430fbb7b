-- migrate:up
-- Three indexes of rk_instances keep only the rows their queries look for: pending instances
-- (the claim), leased ones (a worker's instances), children (a parent's). A running instance's
-- step then changes no entry of the claim index (its updated_at moves on every step), and an
-- instance is no entry of the parent index unless it has a parent: 5 of the ~30 pages a
-- 3-activity workflow wrote to the WAL (see "Simple steps" in docs/storage.md). The lease
-- index stays whole: SQLite's planner does not use a partial index for one arm of the claim's
-- OR, and would scan every running instance instead of the expired ones.
DROP INDEX rk_instances_claim;
CREATE INDEX rk_instances_claim ON rk_instances (updated_at) WHERE status = 'pending';
DROP INDEX rk_instances_owner;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner) WHERE lease_owner IS NOT NULL;
DROP INDEX rk_instances_parent;
CREATE INDEX rk_instances_parent ON rk_instances (parent_id) WHERE parent_id IS NOT NULL;

-- migrate:down
DROP INDEX rk_instances_parent;
CREATE INDEX rk_instances_parent ON rk_instances (parent_id);
DROP INDEX rk_instances_owner;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner);
DROP INDEX rk_instances_claim;
CREATE INDEX rk_instances_claim ON rk_instances (status, updated_at);
