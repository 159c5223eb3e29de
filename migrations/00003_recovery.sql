-- +goose Up
-- The recovery service: stuck and dropped transactions, and the alerts every service raises.

-- attempt_block is the head block when recovery first saw the current attempt in flight: a transaction
-- is stuck once the head is stuck_after_blocks past it. A new attempt clears it (store.ReplaceAttempt).
ALTER TABLE sent_transactions
    ADD COLUMN attempt_block BIGINT UNSIGNED NULL COMMENT 'head block when recovery first saw the current attempt in flight';

-- The stuck-transaction scan reads the in-flight transactions of one chain, by address and nonce.
CREATE INDEX idx_sent_tx_inflight ON sent_transactions (status, chain_id, from_address, nonce);

-- signed: in flight (or waiting); once the transaction settles, the attempt whose receipt settled it is
-- mined and every other one replaced.
ALTER TABLE tx_attempts
    ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'signed' COMMENT 'signed, mined, replaced';

-- Alerts, shared by every instance: an alert is open while open_key holds its key (a unique key: one
-- open alert per condition, whoever fires it), and resolved_at says when it cleared. Resolved rows stay
-- as history.
CREATE TABLE alerts (
    id          BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    alert_key   VARCHAR(255) NOT NULL,
    open_key    VARCHAR(255) NULL COMMENT 'alert_key while open, NULL once resolved',
    kind        VARCHAR(64)  NOT NULL,
    severity    VARCHAR(16)  NOT NULL,
    summary     TEXT         NOT NULL,
    details     TEXT         NOT NULL COMMENT 'JSON: labels and details, never a secret',
    fired_count INT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'how often the condition was seen while open',
    opened_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_seen_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    resolved_at DATETIME(6)  NULL,
    UNIQUE KEY uq_alerts_open (open_key),
    KEY idx_alerts_key (alert_key, id),
    KEY idx_alerts_open_kind (resolved_at, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE alerts;
ALTER TABLE tx_attempts DROP COLUMN status;
DROP INDEX idx_sent_tx_inflight ON sent_transactions;
ALTER TABLE sent_transactions DROP COLUMN attempt_block;
