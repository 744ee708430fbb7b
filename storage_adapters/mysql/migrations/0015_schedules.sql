-- migrate:up
-- Durable schedules (replaykit.core.schedules): the spec is JSON; next_fire_at is NULL while
-- paused. A tick's instance id is derived from schedule_id and the tick, so rk_instances'
-- primary key makes each tick start at most one instance.
CREATE TABLE IF NOT EXISTS rk_schedules (
    schedule_id VARCHAR(255) NOT NULL PRIMARY KEY,
    workflow VARCHAR(255) NOT NULL,
    spec LONGTEXT NOT NULL,
    paused INT NOT NULL DEFAULT 0,
    next_fire_at DOUBLE,
    last_tick DOUBLE,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    KEY rk_schedules_due (paused, next_fire_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- migrate:down
DROP TABLE IF EXISTS rk_schedules;
