-- migrate:up
-- when cancel() was first asked for a running or waiting instance: its status reads "cancelling"
-- until it ends (see storage_adapters/sql_common.py: instance_from_row)
ALTER TABLE rk_instances ADD COLUMN cancel_requested_at DOUBLE;

-- migrate:down
ALTER TABLE rk_instances DROP COLUMN cancel_requested_at;
