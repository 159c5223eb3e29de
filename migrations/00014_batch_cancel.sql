-- +goose Up
-- A cancel of one withdrawal inside a batch replaces the batch at its nonce by one without that payment.
-- Each attempt lists the withdrawals it leaves out (a fee bump of it leaves out the same ones), so the
-- monitor settles by the attempt that mined: left out → CANCELED, the others paid as usual.
CREATE TABLE tx_attempt_drops (
    tx_hash       CHAR(66)    NOT NULL,
    withdrawal_id VARCHAR(36) NOT NULL,
    created_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (tx_hash, withdrawal_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One item cancel per withdrawal of a batch transaction: several clients may cancel their own items.
-- The new key first: it also serves the foreign key on sent_tx_id, so the old one can go.
ALTER TABLE tx_actions ADD UNIQUE KEY uq_tx_actions_w (sent_tx_id, kind, base_hash, withdrawal_id);
ALTER TABLE tx_actions DROP INDEX uq_tx_actions;

-- The withdrawals a reverted batch gave back to be signed again at a new nonce: if a reorg deeper than
-- the watch ever re-mines the reverted transaction successfully, recovery names them (they may be paid
-- twice) even though they no longer point at it.
CREATE TABLE batch_returns (
    sent_tx_id    BIGINT UNSIGNED NOT NULL,
    withdrawal_id VARCHAR(36)     NOT NULL,
    created_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (sent_tx_id, withdrawal_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE batch_returns;
ALTER TABLE tx_actions ADD UNIQUE KEY uq_tx_actions (sent_tx_id, kind, base_hash);
ALTER TABLE tx_actions DROP INDEX uq_tx_actions_w;
DROP TABLE tx_attempt_drops;
