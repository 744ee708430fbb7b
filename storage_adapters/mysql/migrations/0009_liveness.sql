-- migrate:up
-- Liveness (docs/runtime.md, "Leases, liveness and takeover"). rk_workers lists the running
-- workers: each holds GET_LOCK(lock_key) on a dedicated connection for its whole life; a worker
-- whose lock IS_FREE_LOCK is dead (the server frees it when the connection ends), and its
-- instances are taken over.
-- lease_token: a new random token per claim; a step commits only under the token it was
-- claimed with, so two executors of one worker for one instance are told apart.
-- MySQL commits each DDL statement on its own: the ALTER comes last so that a start that failed
-- before it can run the whole migration again.
CREATE TABLE IF NOT EXISTS rk_workers (
    worker_id VARCHAR(255) NOT NULL PRIMARY KEY,
    lock_key VARCHAR(64) NOT NULL,
    pid INT NOT NULL,
    host VARCHAR(255) NOT NULL,
    started_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
ALTER TABLE rk_instances ADD COLUMN lease_token VARCHAR(64), ADD KEY rk_instances_owner (lease_owner);

-- migrate:down
ALTER TABLE rk_instances DROP KEY rk_instances_owner, DROP COLUMN lease_token;
DROP TABLE rk_workers;
