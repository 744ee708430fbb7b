-- migrate:up
-- The version of the workflow code that started each instance's current run (Workflow.version:
-- a hash of the workflow's source, or the version given to @workflow); NULL for instances
-- stored before this migration.
ALTER TABLE rk_instances ADD COLUMN version VARCHAR(100);

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN version;
