-- migrate:up
-- Named queues: an instance started on a queue is 'queued' until an admission step makes it
-- 'pending' (admitted_at, admitted_by); rk_queues holds each queue's limits, and its row is
-- what admissions and deduplicating enqueues of one queue lock on PostgreSQL and MySQL.
ALTER TABLE rk_instances ADD COLUMN queue TEXT;
ALTER TABLE rk_instances ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rk_instances ADD COLUMN dedup_key TEXT;
ALTER TABLE rk_instances ADD COLUMN admitted_at REAL;
ALTER TABLE rk_instances ADD COLUMN admitted_by TEXT;
CREATE INDEX rk_instances_queue ON rk_instances (queue, status, priority DESC, created_at)
    WHERE queue IS NOT NULL;
CREATE INDEX rk_instances_queue_started ON rk_instances (queue, admitted_at)
    WHERE queue IS NOT NULL;
CREATE INDEX rk_instances_queue_dedup ON rk_instances (queue, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE TABLE rk_queues (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    per_worker INTEGER,
    rate_limit INTEGER,
    rate_period REAL,
    updated_at REAL NOT NULL
);

-- migrate:down
DROP TABLE rk_queues;
DROP INDEX rk_instances_queue_dedup;
DROP INDEX rk_instances_queue_started;
DROP INDEX rk_instances_queue;
ALTER TABLE rk_instances DROP COLUMN admitted_by;
ALTER TABLE rk_instances DROP COLUMN admitted_at;
ALTER TABLE rk_instances DROP COLUMN dedup_key;
ALTER TABLE rk_instances DROP COLUMN priority;
ALTER TABLE rk_instances DROP COLUMN queue;
