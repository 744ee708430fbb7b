-- migrate:up
-- Durable schedules (replaykit.core.schedules): the spec is JSON; next_fire_at is NULL while
-- paused. A tick's instance id is derived from schedule_id and the tick, so rk_instances'
-- primary key makes each tick start at most one instance.
CREATE TABLE rk_schedules (
    schedule_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    spec TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_fire_at DOUBLE PRECISION,
    last_tick DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rk_schedules_due ON rk_schedules (paused, next_fire_at);

-- migrate:down
DROP TABLE rk_schedules;
