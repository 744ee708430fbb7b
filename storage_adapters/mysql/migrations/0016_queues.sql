-- migrate:up
-- Named queues: an instance started on a queue is 'queued' until an admission step makes it
-- 'pending' (admitted_at, admitted_by); rk_queues holds each queue's limits, and its row is
-- what admissions and deduplicating enqueues of one queue lock (SELECT ... FOR UPDATE).
-- One ALTER TABLE (atomic in InnoDB), so a failed start can run the migration again.
ALTER TABLE rk_instances
    ADD COLUMN queue VARCHAR(255),
    ADD COLUMN priority INT NOT NULL DEFAULT 0,
    ADD COLUMN dedup_key VARCHAR(255),
    ADD COLUMN admitted_at DOUBLE,
    ADD COLUMN admitted_by VARCHAR(255),
    ADD KEY rk_instances_queue (queue, status, priority DESC, created_at),
    ADD KEY rk_instances_queue_started (queue, admitted_at),
    ADD KEY rk_instances_queue_dedup (queue, dedup_key);
CREATE TABLE IF NOT EXISTS rk_queues (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    concurrency INT,
    per_worker INT,
    rate_limit INT,
    rate_period DOUBLE,
    updated_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- migrate:down
DROP TABLE rk_queues;
ALTER TABLE rk_instances
    DROP KEY rk_instances_queue_dedup,
    DROP KEY rk_instances_queue_started,
    DROP KEY rk_instances_queue,
    DROP COLUMN admitted_by,
    DROP COLUMN admitted_at,
    DROP COLUMN dedup_key,
    DROP COLUMN priority,
    DROP COLUMN queue;
