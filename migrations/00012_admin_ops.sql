-- +goose Up
-- What an operator decided about a parked DLQ message (admin API: dlq.redrive, dlq.discard).
ALTER TABLE dlq_parked
    ADD COLUMN resolution  VARCHAR(16)  NULL COMMENT 'redriven or discarded, once resolved',
    ADD COLUMN resolved_by VARCHAR(128) NULL COMMENT 'the operators who decided (requester+approver)';

-- Wallet actions an operator asked for that need a key (wallet.fill-gap): recorded by the admin API,
-- which holds none, and performed by recovery, which does, like tx_actions.
CREATE TABLE wallet_actions (
    id           BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    request_id   VARCHAR(64)  NOT NULL COMMENT 'the admin request id: the same request recorded once',
    chain        VARCHAR(32)  NOT NULL,
    address      CHAR(42)     NOT NULL,
    kind         VARCHAR(16)  NOT NULL COMMENT 'fill_gap',
    nonces       TEXT         NOT NULL COMMENT 'comma-separated nonces the plan listed',
    requested_by VARCHAR(128) NOT NULL,
    status       VARCHAR(16)  NOT NULL DEFAULT 'pending',
    result       VARCHAR(255) NOT NULL DEFAULT '',
    created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    done_at      DATETIME(6)  NULL,
    UNIQUE KEY uq_wallet_actions_request (request_id),
    KEY idx_wallet_actions_pending (chain, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The price a mined transaction paid per gas (the receipt's effectiveGasPrice), so fees paid are read
-- from the database (admin API: a withdrawal's fees, gas and fees today).
ALTER TABLE sent_transactions
    ADD COLUMN effective_gas_price VARCHAR(78) NULL COMMENT 'wei per gas the mined attempt paid';

-- +goose Down
ALTER TABLE sent_transactions DROP COLUMN effective_gas_price;
DROP TABLE wallet_actions;
ALTER TABLE dlq_parked DROP COLUMN resolved_by, DROP COLUMN resolution;
