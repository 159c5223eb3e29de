-- +goose Up
-- Client requests against a transaction already signed (speed-up, cancel): the API holds no keys, so it records
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

-- A cancel after signing is a new attempt of the same sent transaction at the same nonce: a zero-value
-- self-transfer. kind tells the monitor which outcome the mined attempt means (cancel: the withdrawal
-- is CANCELED, nothing paid); a later fee bump of an attempt keeps its kind.
ALTER TABLE tx_attempts ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'payment';

-- +goose Down
ALTER TABLE tx_attempts DROP COLUMN kind;
DROP TABLE tx_actions;
