-- +goose Up
-- A balance transfer is a top-up (main account → hot wallet) or a sweep (hot wallet → main account),
-- queued by accountmgr and signed by the signer. idempotency_key names the deficit (or excess) it
-- answers: "<kind>:<chain>:<account>:<asset>:<epoch>", epoch being how many transfers of that kind the
-- account had for the asset when the deficit was read. Whatever is redelivered or restarted, a second
-- insert for the same deficit hits the unique key, so one deficit is topped up at most once.
ALTER TABLE balance_transfers ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'top_up';
ALTER TABLE balance_transfers ADD COLUMN idempotency_key VARCHAR(191) NULL;
ALTER TABLE balance_transfers ADD COLUMN epoch BIGINT UNSIGNED NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX uq_balance_transfers_key ON balance_transfers (idempotency_key);
CREATE INDEX idx_balance_transfers_sent ON balance_transfers (sent_tx_id);
CREATE INDEX idx_balance_transfers_chain ON balance_transfers (chain, status, asset);

-- +goose Down
DROP INDEX idx_balance_transfers_chain ON balance_transfers;
DROP INDEX idx_balance_transfers_sent ON balance_transfers;
DROP INDEX uq_balance_transfers_key ON balance_transfers;
ALTER TABLE balance_transfers DROP COLUMN epoch;
ALTER TABLE balance_transfers DROP COLUMN idempotency_key;
ALTER TABLE balance_transfers DROP COLUMN kind;
