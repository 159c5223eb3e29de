-- +goose Up
-- The recovery service's DLQ drain and nonce-conflict handling (recovery/dlq.go, recovery/conflict.go).

-- Every decision the recovery service takes about a DLQ message or a conflicted nonce, for audit: what
-- it did, why, on which message. done_key is set (queue:message_id) on the one decision that finishes a
-- DLQ message; its uniqueness makes a redelivered DLQ message find its decision already taken instead of
-- acting twice (the consumer can die after acting, before deleting the message).
CREATE TABLE recovery_decisions (
    id             BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    queue          VARCHAR(80)  NOT NULL COMMENT 'the DLQ the message came from; empty for a sweep',
    message_id     VARCHAR(128) NOT NULL DEFAULT '',
    action         VARCHAR(32)  NOT NULL COMMENT 'redrive, refee, gap_fill, settle, conflict, wait, failed, parked, done',
    error_type     VARCHAR(32)  NOT NULL DEFAULT '',
    error_code     VARCHAR(64)  NOT NULL DEFAULT '',
    reason         TEXT         NOT NULL,
    withdrawal_ids TEXT         NULL     COMMENT 'comma-separated ids of the withdrawals concerned',
    sent_tx_id     BIGINT UNSIGNED NULL,
    done_key       VARCHAR(220) NULL,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_recovery_decisions_done (done_key),
    KEY idx_recovery_decisions_message (queue, message_id),
    KEY idx_recovery_decisions_sent (sent_tx_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- How often a work message (by its envelope id) was redriven from a DLQ: the backoff grows with it and
-- survives the message's round trips through the DLQ.
CREATE TABLE dlq_redrives (
    envelope_id VARCHAR(128) PRIMARY KEY,
    queue       VARCHAR(80)  NOT NULL,
    redrives    INT UNSIGNED NOT NULL DEFAULT 0,
    last_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- DLQ messages a person must look at: they did not decode, or failed for a reason nobody classified, or
-- concern a recorded transaction that could still be mined. Nothing retries them.
CREATE TABLE dlq_parked (
    id          BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    queue       VARCHAR(80)  NOT NULL,
    message_id  VARCHAR(128) NOT NULL,
    body        MEDIUMBLOB   NOT NULL,
    error_type  VARCHAR(32)  NOT NULL DEFAULT '',
    reason      TEXT         NOT NULL,
    created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    resolved_at DATETIME(6)  NULL,
    UNIQUE KEY uq_dlq_parked_message (queue, message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A nonce of ours taken by a transaction Sluice did not sign, once that transaction is final.
CREATE TABLE nonce_conflicts (
    id             BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    chain          VARCHAR(32)  NOT NULL,
    chain_id       BIGINT UNSIGNED NOT NULL,
    from_address   CHAR(42)     NOT NULL,
    nonce          BIGINT UNSIGNED NOT NULL,
    sent_tx_id     BIGINT UNSIGNED NOT NULL,
    foreign_hash   CHAR(66)     NOT NULL,
    foreign_block  BIGINT UNSIGNED NOT NULL,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_nonce_conflicts (chain_id, from_address, nonce),
    CONSTRAINT fk_nonce_conflicts_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A hot wallet the signer must not use (its key was used outside Sluice). active is 1 while frozen and
-- NULL once unfrozen, so that at most one freeze per wallet is open at a time.
CREATE TABLE wallet_freezes (
    id           BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    chain        VARCHAR(32)  NOT NULL,
    address      CHAR(42)     NOT NULL,
    reason       TEXT         NOT NULL,
    frozen_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    frozen_by    VARCHAR(64)  NOT NULL,
    unfrozen_at  DATETIME(6)  NULL,
    unfrozen_by  VARCHAR(64)  NULL,
    unfreeze_note TEXT        NULL,
    active       TINYINT      NULL DEFAULT 1,
    UNIQUE KEY uq_wallet_freezes_active (chain, address, active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE wallet_freezes;
DROP TABLE nonce_conflicts;
DROP TABLE dlq_parked;
DROP TABLE dlq_redrives;
DROP TABLE recovery_decisions;
