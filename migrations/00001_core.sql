-- +goose Up
-- Amounts are unsigned integers in the asset's base units, stored as decimal strings: uint256 has up to
-- 78 digits, more than MariaDB's DECIMAL(65) holds.

CREATE TABLE api_clients (
    id          BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(100) NOT NULL,
    key_hash    BINARY(32)   NOT NULL COMMENT 'sha256 of the API key; the key itself is never stored',
    key_prefix  VARCHAR(16)  NOT NULL COMMENT 'first characters of the key, to tell keys apart in the dashboard',
    created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    disabled_at DATETIME(6)  NULL,
    UNIQUE KEY uq_api_clients_name (name),
    UNIQUE KEY uq_api_clients_key_hash (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sent_transactions (
    id                   BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    chain                VARCHAR(32)  NOT NULL,
    chain_id             BIGINT UNSIGNED NOT NULL,
    from_address         CHAR(42)     NOT NULL,
    nonce                BIGINT UNSIGNED NOT NULL,
    to_address           CHAR(42)     NOT NULL,
    tx_hash              CHAR(66)     NOT NULL COMMENT 'hash of the current attempt; every attempt is in tx_attempts',
    raw_tx               MEDIUMBLOB   NOT NULL,
    gas_limit            BIGINT UNSIGNED NOT NULL,
    max_fee_per_gas      VARCHAR(78)  NOT NULL,
    max_priority_fee     VARCHAR(78)  NOT NULL,
    kind                 VARCHAR(16)  NOT NULL COMMENT 'withdrawal, batch, nonce_fill, top_up',
    source               VARCHAR(16)  NOT NULL COMMENT 'the service that signed it',
    request_id           VARCHAR(64)  NULL     COMMENT 'id of the queue message that asked for it, when there was one',
    status               VARCHAR(16)  NOT NULL COMMENT 'SIGNED, BROADCASTED, MINED, CONFIRMED, FAILED',
    block_number         BIGINT UNSIGNED NULL,
    block_hash           CHAR(66)     NULL,
    receipt_status       TINYINT      NULL,
    gas_used             BIGINT UNSIGNED NULL,
    correlation_id       VARCHAR(64)  NOT NULL DEFAULT '',
    created_at           DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at           DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    -- One payload per nonce: the last line of defence against signing two different txs into one nonce.
    UNIQUE KEY uq_sent_tx_nonce (chain_id, from_address, nonce),
    KEY idx_sent_tx_status (status, updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every signed attempt of a sent transaction (the first one and each fee bump): only one can be mined,
-- and any of them seen on chain means the transaction went out.
CREATE TABLE tx_attempts (
    id               BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    sent_tx_id       BIGINT UNSIGNED NOT NULL,
    tx_hash          CHAR(66)     NOT NULL,
    raw_tx           MEDIUMBLOB   NOT NULL,
    max_fee_per_gas  VARCHAR(78)  NOT NULL,
    max_priority_fee VARCHAR(78)  NOT NULL,
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_tx_attempts_hash (tx_hash),
    KEY idx_tx_attempts_sent (sent_tx_id),
    CONSTRAINT fk_tx_attempts_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE batches (
    id            VARCHAR(36)  PRIMARY KEY,
    chain         VARCHAR(32)  NOT NULL,
    asset         VARCHAR(32)  NOT NULL,
    from_address  CHAR(42)     NOT NULL,
    mode          VARCHAR(16)  NOT NULL COMMENT 'single, multicall3, batch_erc20',
    size          INT UNSIGNED NOT NULL,
    estimated_gas BIGINT UNSIGNED NULL,
    reason        VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'why this mode was chosen, and the expected saving',
    sent_tx_id    BIGINT UNSIGNED NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_batches_sent (sent_tx_id),
    CONSTRAINT fk_batches_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE withdrawals (
    id             VARCHAR(36)  PRIMARY KEY,
    client_id      BIGINT UNSIGNED NOT NULL,
    external_id    VARCHAR(128) NOT NULL,
    request_hash   BINARY(32)   NOT NULL COMMENT 'hash of the normalised request, to tell a replay from a changed body',
    chain          VARCHAR(32)  NOT NULL,
    asset          VARCHAR(32)  NOT NULL,
    to_address     CHAR(42)     NOT NULL,
    amount         VARCHAR(78)  NOT NULL COMMENT 'base units',
    status         VARCHAR(16)  NOT NULL,
    version        INT UNSIGNED NOT NULL DEFAULT 0,
    from_address   CHAR(42)     NULL,
    sent_tx_id     BIGINT UNSIGNED NULL,
    batch_id       VARCHAR(36)  NULL,
    block_number   BIGINT UNSIGNED NULL,
    error_type     VARCHAR(32)  NULL,
    error_message  TEXT         NULL,
    correlation_id VARCHAR(64)  NOT NULL,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_withdrawals_external (client_id, external_id),
    KEY idx_withdrawals_status (status, created_at, id),
    KEY idx_withdrawals_sent_tx (sent_tx_id),
    CONSTRAINT fk_withdrawals_client FOREIGN KEY (client_id) REFERENCES api_clients (id),
    CONSTRAINT fk_withdrawals_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id),
    CONSTRAINT fk_withdrawals_batch FOREIGN KEY (batch_id) REFERENCES batches (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE withdrawal_history (
    id            BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    withdrawal_id VARCHAR(36)  NOT NULL,
    from_status   VARCHAR(16)  NULL,
    to_status     VARCHAR(16)  NOT NULL,
    reason        TEXT         NOT NULL,
    actor         VARCHAR(32)  NOT NULL COMMENT 'the service or operator that made the change',
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_history_withdrawal (withdrawal_id, id),
    CONSTRAINT fk_history_withdrawal FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE managed_accounts (
    id             BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    chain          VARCHAR(32)  NOT NULL,
    address        CHAR(42)     NOT NULL,
    role           VARCHAR(16)  NOT NULL COMMENT 'main or hot',
    key_ref        VARCHAR(255) NOT NULL COMMENT 'where the key lives (keystore file or secret id), never the key',
    min_balance    VARCHAR(78)  NOT NULL DEFAULT '0',
    target_balance VARCHAR(78)  NOT NULL DEFAULT '0',
    enabled        BOOLEAN      NOT NULL DEFAULT TRUE,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_managed_accounts (chain, address)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE balance_transfers (
    id            VARCHAR(36)  PRIMARY KEY,
    chain         VARCHAR(32)  NOT NULL,
    asset         VARCHAR(32)  NOT NULL,
    from_address  CHAR(42)     NOT NULL,
    to_address    CHAR(42)     NOT NULL,
    amount        VARCHAR(78)  NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    reason        VARCHAR(255) NOT NULL DEFAULT '',
    sent_tx_id    BIGINT UNSIGNED NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY idx_balance_transfers_status (status, created_at),
    CONSTRAINT fk_balance_transfers_sent FOREIGN KEY (sent_tx_id) REFERENCES sent_transactions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE balance_transfers;
DROP TABLE managed_accounts;
DROP TABLE withdrawal_history;
DROP TABLE withdrawals;
DROP TABLE batches;
DROP TABLE tx_attempts;
DROP TABLE sent_transactions;
DROP TABLE api_clients;
