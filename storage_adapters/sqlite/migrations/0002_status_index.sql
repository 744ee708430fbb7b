-- migrate:up
CREATE INDEX rk_instances_status_created ON rk_instances (status, created_at);

-- migrate:down
DROP INDEX rk_instances_status_created;
