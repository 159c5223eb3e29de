-- +goose Up
-- The W3C trace context of the API request that accepted a withdrawal, so that work which picks the
-- withdrawal up from the database rather than from its message (the signer's batcher) continues or
-- links to the withdrawal's trace. NULL when tracing was off.
ALTER TABLE withdrawals ADD COLUMN traceparent VARCHAR(55) NULL COMMENT 'W3C traceparent of the accepting request';

-- +goose Down
ALTER TABLE withdrawals DROP COLUMN traceparent;
