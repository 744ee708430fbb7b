-- migrate:up
-- Liveness (docs/runtime.md, "Leases, liveness and takeover"). rk_workers lists the running
-- workers: each holds, for its whole life, an flock on the file lock_key (next to the database);
-- a worker whose file can be locked by someone else is dead, and its instances are taken over.
-- lease_token: a new random token per claim; a step commits only under the token it was
-- claimed with, so two executors of one worker for one instance are told apart.
CREATE TABLE rk_workers (
    worker_id TEXT PRIMARY KEY,
    lock_key TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL
);
ALTER TABLE rk_instances ADD COLUMN lease_token TEXT;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner);

-- migrate:down
DROP INDEX rk_instances_owner;
ALTER TABLE rk_instances DROP COLUMN lease_token;
DROP TABLE rk_workers;
