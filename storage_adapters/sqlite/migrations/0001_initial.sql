-- migrate:up
CREATE TABLE rk_instances (
    instance_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    error TEXT,
    run INTEGER NOT NULL DEFAULT 1,
    continued_from TEXT,
    parent_id TEXT,
    parent_step INTEGER,
    lease_owner TEXT,
    lease_expires_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    history_len INTEGER NOT NULL DEFAULT 0,
    event_floor INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rk_instances_claim ON rk_instances (status, updated_at);
CREATE INDEX rk_instances_lease ON rk_instances (status, lease_expires_at);
CREATE INDEX rk_instances_workflow ON rk_instances (workflow, created_at);
CREATE INDEX rk_instances_created ON rk_instances (created_at);
CREATE INDEX rk_instances_parent ON rk_instances (parent_id);

CREATE TABLE rk_history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE rk_history_archive (
    instance_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, run, seq)
);

CREATE TABLE rk_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    event BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX rk_inbox_instance ON rk_inbox (instance_id, id);

CREATE TABLE rk_timers (
    instance_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    fire_at REAL NOT NULL,
    event BLOB NOT NULL,
    is_timeout INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, step)
);
CREATE INDEX rk_timers_fire_at ON rk_timers (fire_at);

CREATE TABLE rk_waits (
    instance_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    match TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (instance_id, step)
);
CREATE INDEX rk_waits_key ON rk_waits (kind, key);

CREATE TABLE rk_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    event_id TEXT NOT NULL DEFAULT '',
    subject TEXT,
    time TEXT,
    data TEXT,
    extensions TEXT,
    target TEXT,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX rk_events_dedupe ON rk_events (source, event_id) WHERE event_id <> '';
CREATE INDEX rk_events_type ON rk_events (type, id);
CREATE INDEX rk_events_target ON rk_events (target, type, id);

CREATE TABLE rk_event_deliveries (
    instance_id TEXT NOT NULL,
    event_pk INTEGER NOT NULL,
    PRIMARY KEY (instance_id, event_pk)
);

CREATE TABLE rk_subscriptions (
    instance_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    mode TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (instance_id, channel)
);
CREATE INDEX rk_subscriptions_channel ON rk_subscriptions (channel, mode);

CREATE TABLE rk_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    data TEXT,
    metadata TEXT,
    sender TEXT,
    target TEXT,
    claimed_by TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX rk_messages_channel ON rk_messages (channel, id);
CREATE INDEX rk_messages_target ON rk_messages (target, channel, id);

CREATE TABLE rk_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT,
    event TEXT NOT NULL,
    destination TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX rk_outbox_due ON rk_outbox (status, next_attempt_at);

-- migrate:down
DROP TABLE rk_outbox;
DROP TABLE rk_messages;
DROP TABLE rk_subscriptions;
DROP TABLE rk_event_deliveries;
DROP TABLE rk_events;
DROP TABLE rk_waits;
DROP TABLE rk_timers;
DROP TABLE rk_inbox;
DROP TABLE rk_history_archive;
DROP TABLE rk_history;
DROP TABLE rk_instances;
