-- migrate:up
-- the timeout= of a start on a queue (seconds): its deadline is admitted_at + timeout, set when
-- its queue admits it (docs/queues.md)
ALTER TABLE rk_instances ADD COLUMN timeout DOUBLE;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN timeout;
