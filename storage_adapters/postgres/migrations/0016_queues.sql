-- migrate:up
-- Named queues: an instance started on a queue is 'queued' until an admission step makes it
-- 'pending' (admitted_at, admitted_by); rk_queues holds each queue's limits, and its row is
-- what admissions and deduplicating enqueues of one queue lock (FOR UPDATE).
ALTER TABLE rk_instances
    ADD COLUMN queue TEXT,
    ADD COLUMN priority INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN dedup_key TEXT,
    ADD COLUMN admitted_at DOUBLE PRECISION,
    ADD COLUMN admitted_by TEXT;
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
    rate_period DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);

-- migrate:down
DROP TABLE rk_queues;
DROP INDEX rk_instances_queue_dedup;
DROP INDEX rk_instances_queue_started;
DROP INDEX rk_instances_queue;
ALTER TABLE rk_instances
    DROP COLUMN admitted_by,
    DROP COLUMN admitted_at,
    DROP COLUMN dedup_key,
    DROP COLUMN priority,
    DROP COLUMN queue;
