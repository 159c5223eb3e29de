-- +goose Up
-- A dead-lettered (or delivered) webhook delivery can be sent again on request (a client's
-- POST /v1/webhooks/{id}/redeliver, an operator's webhook.redeliver): it goes back to pending with its
-- attempts kept. retry_since starts its new retry window (DeadAfter counts from it, not from created_at;
-- NULL: never redelivered) and retry_base is the attempts made before it (the backoff restarts from
-- the base wait); redelivered_by names who asked last.
ALTER TABLE webhook_deliveries
    ADD COLUMN retry_since    DATETIME(6)  NULL,
    ADD COLUMN retry_base     INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN redeliveries   INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN redelivered_by VARCHAR(128) NULL;

-- +goose Down
ALTER TABLE webhook_deliveries
    DROP COLUMN retry_since,
    DROP COLUMN retry_base,
    DROP COLUMN redeliveries,
    DROP COLUMN redelivered_by;
