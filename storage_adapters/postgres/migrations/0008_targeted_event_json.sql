-- migrate:up
-- rk_deliver_targeted_event: rk_targeted_event of 0003 (see there) with the inbox entry built as
-- JSON, not spliced as text: EventReceived is json_build_object of its typed parts, namely the
-- step of the wait this statement takes, the event type, the event's attributes and data as one
-- JSON value (p_event: msgspec's encoding of the EventData struct, embedded verbatim) and the
-- time. rk_targeted_event stays for workers of the previous version during a rolling upgrade.
CREATE FUNCTION rk_deliver_targeted_event(
    p_target TEXT, p_type TEXT, p_source TEXT, p_event_id TEXT, p_subject TEXT, p_time TEXT,
    p_data TEXT, p_extensions TEXT, p_now DOUBLE PRECISION, p_event TEXT, p_owner TEXT,
    p_expires DOUBLE PRECISION, p_workflows TEXT[],
    OUT r_found BOOLEAN, OUT r_stored BOOLEAN, OUT r_woken BOOLEAN, OUT r_handed BOOLEAN,
    OUT r_workflow TEXT, OUT r_input TEXT, OUT r_run INTEGER, OUT r_continued_from TEXT,
    OUT r_parent_id TEXT, OUT r_parent_step INTEGER, OUT r_created_at DOUBLE PRECISION,
    OUT r_history_len INTEGER, OUT r_history BYTEA[], OUT r_inbox_ids BIGINT[],
    OUT r_inbox BYTEA[]
)
LANGUAGE plpgsql VOLATILE
-- "at" in the inbox event is p_now written by float8out: shortest exact form, whatever the
-- server's default
SET extra_float_digits = 3
AS $$
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
        SELECT p_target,
            convert_to(json_build_object('e', 'EventReceived', 'at', p_now, 'step', dw.step,
                'name', p_type, 'event', p_event::json)::text, 'UTF8'),
            p_now
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
DROP FUNCTION rk_deliver_targeted_event(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[]);
