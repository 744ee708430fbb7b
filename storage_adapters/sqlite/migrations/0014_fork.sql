-- migrate:up
-- A fork (App.fork): the instance whose history it copied and the step it re-runs from.
ALTER TABLE rk_instances ADD COLUMN forked_from VARCHAR(255);
ALTER TABLE rk_instances ADD COLUMN forked_step INTEGER;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN forked_step;
ALTER TABLE rk_instances DROP COLUMN forked_from;
