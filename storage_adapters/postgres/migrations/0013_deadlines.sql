-- migrate:up
ALTER TABLE rk_instances ADD COLUMN deadline DOUBLE PRECISION;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN deadline;
