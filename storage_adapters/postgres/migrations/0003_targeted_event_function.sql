-- migrate:up
-- A targeted event (send_event(..., instance_id=X)) in one round trip: lock X's row, then store
-- the event (deduplicated), take X's lowest matching wait for that type, record the delivery,
-- put EventReceived into X's inbox, drop the wait's timeout, wake X (or lease it to p_owner:
-- the hand-off to a local worker, when X's workflow is in p_workflows, the ones it runs) and
-- notify. A VOLATILE PL/pgSQL function takes a new snapshot for each statement under READ COMMITTED, so the statements after the lock see every commit
-- that held the row before (e.g. X registering its wait). When X is handed over, its record,
-- history and inbox come back too, so the worker that runs it reads nothing more.
CREATE FUNCTION rk_targeted_event(
    p_target TEXT, p_type TEXT, p_source TEXT, p_event_id TEXT, p_subject TEXT, p_time TEXT,
    p_data TEXT, p_extensions TEXT, p_now DOUBLE PRECISION, p_before TEXT, p_after TEXT,
    p_owner TEXT, p_expires DOUBLE PRECISION, p_workflows TEXT[],
    OUT r_found BOOLEAN, OUT r_stored BOOLEAN, OUT r_woken BOOLEAN, OUT r_handed BOOLEAN,
    OUT r_workflow TEXT, OUT r_input TEXT, OUT r_run INTEGER, OUT r_continued_from TEXT,
    OUT r_parent_id TEXT, OUT r_parent_step INTEGER, OUT r_created_at DOUBLE PRECISION,
    OUT r_history_len INTEGER, OUT r_history BYTEA[], OUT r_inbox_ids BIGINT[],
    OUT r_inbox BYTEA[]
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_status TEXT;
    v_workflow TEXT;
    v_owner TEXT;
BEGIN
    SELECT status, workflow INTO v_status, v_workflow
    FROM rk_instances WHERE instance_id = p_target FOR UPDATE;
    r_found := FOUND;
    -- hand off only to an owner that can run the instance's workflow
    v_owner := CASE WHEN v_workflow = ANY(p_workflows) THEN p_owner END;
    r_stored := FALSE;
    r_woken := FALSE;
    r_handed := FALSE;
    IF NOT r_found THEN
        RETURN;
    END IF;
    WITH ev AS (
        INSERT INTO rk_events (type, source, event_id, subject, time, data, extensions, target,
            created_at)
        VALUES (p_type, p_source, p_event_id, p_subject, p_time, p_data, p_extensions, p_target,
            p_now)
        ON CONFLICT DO NOTHING
        RETURNING id
    ),
    w AS (
        SELECT step FROM rk_waits
        WHERE EXISTS (SELECT 1 FROM ev) AND kind = 'event' AND "key" = p_type
          AND instance_id = p_target
          AND ("match" IS NULL OR NOT EXISTS (
              SELECT 1 FROM jsonb_each("match"::jsonb) AS m
              WHERE (p_data::jsonb -> m.key) IS DISTINCT FROM m.value))
        ORDER BY step LIMIT 1
        FOR UPDATE
    ),
    dw AS (
        DELETE FROM rk_waits AS d USING w
        WHERE d.instance_id = p_target AND d.step = w.step
        RETURNING d.step
    ),
    dl AS (
        INSERT INTO rk_event_deliveries (instance_id, event_pk)
        SELECT p_target, ev.id FROM ev, dw
        ON CONFLICT DO NOTHING
    ),
    ib AS (
        INSERT INTO rk_inbox (instance_id, event, created_at)
        SELECT p_target, convert_to(p_before || dw.step::text || p_after, 'UTF8'), p_now
        FROM dw
    ),
    dt AS (
        DELETE FROM rk_timers AS t USING dw WHERE t.instance_id = p_target AND t.step = dw.step
    ),
    wk AS (
        UPDATE rk_instances AS r
        SET status = CASE
                WHEN v_status <> 'waiting' THEN r.status
                WHEN v_owner IS NULL THEN 'pending'
                ELSE 'running' END,
            lease_owner = CASE WHEN v_status = 'waiting' THEN v_owner ELSE r.lease_owner END,
            lease_expires_at = CASE
                WHEN v_status = 'waiting' THEN p_expires ELSE r.lease_expires_at END,
            updated_at = p_now
        WHERE r.instance_id = p_target AND EXISTS (SELECT 1 FROM dw)
        RETURNING r.instance_id
    )
    SELECT EXISTS (SELECT 1 FROM ev), EXISTS (SELECT 1 FROM wk) INTO r_stored, r_woken;
    r_handed := r_woken AND v_status = 'waiting' AND v_owner IS NOT NULL;
    IF r_woken AND NOT r_handed THEN
        PERFORM pg_notify('replaykit', COALESCE(current_schema(), '') || ':runnable');
    END IF;
    IF r_handed THEN
        SELECT workflow, input, run, continued_from, parent_id, parent_step, created_at,
               history_len
        INTO r_workflow, r_input, r_run, r_continued_from, r_parent_id, r_parent_step,
             r_created_at, r_history_len
        FROM rk_instances WHERE instance_id = p_target;
        SELECT array_agg(event ORDER BY seq) INTO r_history
        FROM rk_history WHERE instance_id = p_target;
        SELECT array_agg(id ORDER BY id), array_agg(event ORDER BY id)
        INTO r_inbox_ids, r_inbox
        FROM rk_inbox WHERE instance_id = p_target;
    END IF;
END
$$;

-- migrate:down
DROP FUNCTION rk_targeted_event(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, TEXT, DOUBLE PRECISION, TEXT[]);
