-- +goose Up
-- Why a PENDING withdrawal is not being signed, when it is waiting on something outside Sluice's control
-- (awaiting_funds: no hot wallet of its chain can fund it yet), and since when: the API shows the first,
-- and the signer fails the withdrawal with INSUFFICIENT_FUNDS once the second is older than the chain's
-- funds_deadline. Both are cleared when the withdrawal is signed (or ends).
ALTER TABLE withdrawals ADD COLUMN waiting VARCHAR(32) NULL;
ALTER TABLE withdrawals ADD COLUMN waiting_since DATETIME(6) NULL;

-- +goose Down
ALTER TABLE withdrawals DROP COLUMN waiting_since;
ALTER TABLE withdrawals DROP COLUMN waiting;
