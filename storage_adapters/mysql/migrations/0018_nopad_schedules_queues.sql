-- migrate:up
-- Schedule ids and queue names compared byte for byte, like instance ids since 0010: rk_schedules
-- (0015) and rk_queues (0016) were created with utf8mb4_bin, a PAD SPACE collation ("q" and "q "
-- were the same queue), so they move to the server's NO PAD binary collation (utf8mb4_nopad_bin on
-- MariaDB, utf8mb4_0900_bin on MySQL 8). CONVERT TO is idempotent, so a re-run is harmless.
SET @rk_collation = IF(LOCATE('MariaDB', VERSION()) > 0, 'utf8mb4_nopad_bin', 'utf8mb4_0900_bin');
SET @rk_sql = CONCAT('ALTER TABLE rk_schedules CONVERT TO CHARACTER SET utf8mb4 COLLATE ', @rk_collation);
PREPARE rk_stmt FROM @rk_sql;
EXECUTE rk_stmt;
DEALLOCATE PREPARE rk_stmt;
SET @rk_sql = CONCAT('ALTER TABLE rk_queues CONVERT TO CHARACTER SET utf8mb4 COLLATE ', @rk_collation);
PREPARE rk_stmt FROM @rk_sql;
EXECUTE rk_stmt;
DEALLOCATE PREPARE rk_stmt;

-- migrate:down
ALTER TABLE rk_schedules CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE rk_queues CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
