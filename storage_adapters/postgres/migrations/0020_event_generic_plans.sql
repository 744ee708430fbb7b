-- migrate:up
-- The targeted-event functions (0008's rk_deliver_targeted_event, 0009's hand-off
-- rk_deliver_targeted_event_leased) run their statements with generic plans: each is planned
-- once per connection, not anew for each of a connection's first five calls, as PL/pgSQL does
-- with custom plans (about 1.5 ms of server time per call instead of 0.9 ms, measured: see
-- "PostgreSQL event wake-up" in benchmarks/README.md). Every statement in them looks rows up by
-- instance id, so one plan fits all calls.
ALTER FUNCTION rk_deliver_targeted_event(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[])
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION rk_deliver_targeted_event_leased(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[], TEXT)
    SET plan_cache_mode = force_generic_plan;

-- migrate:down
ALTER FUNCTION rk_deliver_targeted_event_leased(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[], TEXT)
    RESET plan_cache_mode;
ALTER FUNCTION rk_deliver_targeted_event(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    DOUBLE PRECISION, TEXT, TEXT, DOUBLE PRECISION, TEXT[])
    RESET plan_cache_mode;
