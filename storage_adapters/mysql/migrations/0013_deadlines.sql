-- migrate:up
ALTER TABLE rk_instances ADD COLUMN deadline DOUBLE;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN deadline;
