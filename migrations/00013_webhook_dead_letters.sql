-- +goose Up
-- The operators' dead-letter view (store.DeadWebhookDeliveries) lists state = 'dead' newest first and
-- pages by id: one index range, whatever the number of delivered rows beside them.
ALTER TABLE webhook_deliveries ADD KEY idx_webhook_deliveries_state (state, id);

-- +goose Down
ALTER TABLE webhook_deliveries DROP KEY idx_webhook_deliveries_state;
