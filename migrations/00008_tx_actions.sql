-- +goose Up
-- Client requests against a transaction already signed (speed-up): the API holds no keys, so it records
-- the request here and recovery, which signs, performs it on its next stuck sweep of the chain. One row
-- per (transaction, kind, attempt the request was made against): the same request twice is one action,
-- and a speed-up asked again after the bump is a new one.
CREATE TABLE tx_actions (
    id            BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    withdrawal_id VARCHAR(36)     NOT NULL,
    sent_tx_id    BIGINT UNSIGNED NOT NULL,
    chain         VARCHAR(64)     NOT NULL,
    kind          VARCHAR(16)     NOT NULL,
    base_hash     CHAR(66)        NOT NULL,
    status        VARCHAR(16)     NOT NULL DEFAULT 'pending',
    result        VARCHAR(255)    NOT NULL DEFAULT '',
    created_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    done_at       DATETIME(6)     NULL,
    UNIQUE KEY uq_tx_actions (sent_tx_id, kind, base_hash),
    KEY idx_tx_actions_pending (chain, status),
    CONSTRAINT fk_tx_actions_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE tx_actions;
