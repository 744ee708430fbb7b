-- migrate:up
-- MySQL 8+ / MariaDB 10.6+ (InnoDB). Same tables and indexes as the SQLite and PostgreSQL
-- migrations. Keys are VARCHAR(255) in utf8mb4_bin, case-sensitive like the other databases
-- (but PAD SPACE: trailing spaces do not make a key different); JSON values are LONGTEXT,
-- history events LONGBLOB, times DOUBLE.
-- MySQL commits every DDL statement on its own, so each one may be run again (IF NOT EXISTS)
-- after a start that failed half-way; indexes are declared inside CREATE TABLE for that reason.
CREATE TABLE IF NOT EXISTS rk_instances (
    instance_id VARCHAR(255) NOT NULL PRIMARY KEY,
    workflow VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    input LONGTEXT,
    output LONGTEXT,
    error LONGTEXT,
    run INT NOT NULL DEFAULT 1,
    continued_from TEXT,
    parent_id VARCHAR(255),
    parent_step INT,
    lease_owner VARCHAR(255),
    lease_expires_at DOUBLE,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    history_len INT NOT NULL DEFAULT 0,
    event_floor BIGINT NOT NULL DEFAULT 0,
    KEY rk_instances_claim (status, updated_at),
    KEY rk_instances_lease (status, lease_expires_at),
    KEY rk_instances_workflow (workflow, created_at),
    KEY rk_instances_created (created_at),
    KEY rk_instances_parent (parent_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_history (
    instance_id VARCHAR(255) NOT NULL,
    seq INT NOT NULL,
    event LONGBLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_history_archive (
    instance_id VARCHAR(255) NOT NULL,
    run INT NOT NULL,
    seq INT NOT NULL,
    event LONGBLOB NOT NULL,
    PRIMARY KEY (instance_id, run, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_inbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    instance_id VARCHAR(255) NOT NULL,
    event LONGBLOB NOT NULL,
    created_at DOUBLE NOT NULL,
    KEY rk_inbox_instance (instance_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_timers (
    instance_id VARCHAR(255) NOT NULL,
    step INT NOT NULL,
    fire_at DOUBLE NOT NULL,
    event LONGBLOB NOT NULL,
    is_timeout BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (instance_id, step),
    KEY rk_timers_fire_at (fire_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_waits (
    instance_id VARCHAR(255) NOT NULL,
    step INT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    `key` VARCHAR(255) NOT NULL,
    `match` LONGTEXT,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (instance_id, step),
    KEY rk_waits_key (kind, `key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- No partial indexes in MySQL: the dedupe key is NULL (never a duplicate) without an event id.
CREATE TABLE IF NOT EXISTS rk_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    type VARCHAR(255) NOT NULL,
    source VARCHAR(255) NOT NULL DEFAULT '',
    event_id VARCHAR(255) NOT NULL DEFAULT '',
    dedupe_id VARCHAR(255) AS (NULLIF(event_id, '')) STORED,
    subject TEXT,
    time TEXT,
    data LONGTEXT,
    extensions LONGTEXT,
    target VARCHAR(255),
    created_at DOUBLE NOT NULL,
    UNIQUE KEY rk_events_dedupe (source, dedupe_id),
    KEY rk_events_type (type, id),
    KEY rk_events_target (target, type, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_event_deliveries (
    instance_id VARCHAR(255) NOT NULL,
    event_pk BIGINT NOT NULL,
    PRIMARY KEY (instance_id, event_pk)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_subscriptions (
    instance_id VARCHAR(255) NOT NULL,
    channel VARCHAR(255) NOT NULL,
    mode VARCHAR(16) NOT NULL,
    `cursor` BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (instance_id, channel),
    KEY rk_subscriptions_channel (channel, mode)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_messages (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel VARCHAR(255) NOT NULL,
    data LONGTEXT,
    metadata LONGTEXT,
    sender TEXT,
    target VARCHAR(255),
    claimed_by VARCHAR(255),
    created_at DOUBLE NOT NULL,
    KEY rk_messages_channel (channel, id),
    KEY rk_messages_target (target, channel, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rk_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    instance_id VARCHAR(255),
    event LONGTEXT NOT NULL,
    destination TEXT,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE NOT NULL DEFAULT 0,
    claimed_by VARCHAR(255),
    claimed_until DOUBLE,
    last_error LONGTEXT,
    created_at DOUBLE NOT NULL,
    delivered_at DOUBLE,
    KEY rk_outbox_due (status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Per-key locks held to the end of a transaction (event types, channels): MySQL's GET_LOCK
-- belongs to the session, not the transaction, so a locked row of this table stands in for
-- PostgreSQL's pg_advisory_xact_lock.
CREATE TABLE IF NOT EXISTS rk_locks (
    lock_key VARCHAR(512) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- migrate:down
DROP TABLE rk_locks;
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
