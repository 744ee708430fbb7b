-- migrate:up
ALTER TABLE rk_instances ADD COLUMN deadline REAL;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN deadline;
