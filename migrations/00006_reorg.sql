-- +goose Up
-- Reorgs beyond the confirmation depth. The block hash of a confirmed transaction is already recorded
-- (sent_transactions.block_hash, written when it settles); the reorg watch reads the CONFIRMED
-- transactions of one chain mined in its last reorg_watch_blocks blocks and compares that hash with the
-- canonical block at the same height.
CREATE INDEX idx_sent_tx_mined ON sent_transactions (chain_id, status, block_number);

-- +goose Down
DROP INDEX idx_sent_tx_mined ON sent_transactions;
