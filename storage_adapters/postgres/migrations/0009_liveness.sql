-- migrate:up
-- Liveness (docs/runtime.md, "Leases, liveness and takeover"). rk_workers lists the running
-- workers: each holds the session-level pg_advisory_lock(lock_key) on a dedicated connection for
-- its whole life; a worker whose key another session can lock is dead (PostgreSQL frees the
-- lock when the connection ends), and its instances are taken over.
-- lease_token: a new random token per claim; a step commits only under the token it was
-- claimed with, so two executors of one worker for one instance are told apart.
CREATE TABLE rk_workers (
    worker_id TEXT PRIMARY KEY,
    lock_key BIGINT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL
);
ALTER TABLE rk_instances ADD COLUMN lease_token TEXT;
CREATE INDEX rk_instances_owner ON rk_instances (lease_owner);
-- rk_deliver_targeted_event (0008) leasing a woken instance to p_owner under p_token: the
-- hand-off of send_event_and_claim, fenced like every other claim.
CREATE FUNCTION rk_deliver_targeted_event_leased(
    p_target TEXT, p_type TEXT, p_source TEXT, p_event_id TEXT, p_subject TEXT, p_time TEXT,
    p_data TEXT, p_extensions TEXT, p_now DOUBLE PRECISION, p_event TEXT, p_owner TEXT,
    p_expires DOUBLE PRECISION, p_workflows TEXT[], p_token TEXT,
    OUT r_found BOOLEAN, OUT r_stored BOOLEAN, OUT r_woken BOOLEAN, OUT r_handed BOOLEAN,
    OUT r_workflow TEXT, OUT r_input TEXT, OUT r_run INTEGER, OUT r_continued_from TEXT,
    OUT r_parent_id TEXT, OUT r_parent_step INTEGER, OUT r_created_at DOUBLE PRECISION,
    OUT r_history_len INTEGER, OUT r_history BYTEA[], OUT r_inbox_ids BIGINT[],
    OUT r_inbox BYTEA[]
)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    SELECT * INTO r_found, r_stored, r_woken, r_handed, r_workflow, r_input, r_run,
        r_continued_from, r_parent_id, r_parent_step, r_created_at, r_history_len, r_history,
        r_inbox_ids, r_inbox
    FROM rk_deliver_targeted_event(p_target, p_type, p_source, p_event_id, p_subject, p_time,
        p_data, p_extensions, p_now, p_event, p_owner, p_expires, p_workflows);
    IF r_handed THEN
        UPDATE rk_instances SET lease_token = p_token WHERE instance_id = p_target;
    END IF;
END
$$;

-- migrate:down
DROP FUNCTION rk_deliver_targeted_event_leased(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[], TEXT);
DROP INDEX rk_instances_owner;
ALTER TABLE rk_instances DROP COLUMN lease_token;
DROP TABLE rk_workers;
