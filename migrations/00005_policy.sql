-- +goose Up
-- Withdrawal policy (internal/policy), approvals and scoped API keys.
-- Amount columns are DECIMAL(65,0) in base units: exact, and SUM over them stays exact (65 digits is
-- far above any limit an operator sets; withdrawals.amount itself stays a 78-digit string).

-- AWAITING_APPROVAL is 17 characters.
ALTER TABLE withdrawals MODIFY status VARCHAR(24) NOT NULL;
ALTER TABLE withdrawal_history MODIFY from_status VARCHAR(24) NULL, MODIFY to_status VARCHAR(24) NOT NULL;
-- The rolling 24 h total and the velocity count read a client's recent withdrawals of one asset.
ALTER TABLE withdrawals ADD KEY idx_withdrawals_policy (client_id, chain, asset, created_at);
-- The address-poisoning check looks for a recent destination sharing the first and last four hex
-- characters: to_edge is those eight, lower-cased, so that lookup is an index range. The store writes it
-- (MariaDB refuses a generated column over a CHAR column: its value would depend on the sql_mode).
ALTER TABLE withdrawals ADD COLUMN to_edge CHAR(8) NOT NULL DEFAULT '';
-- to_address is in the key so that "to_address <> ?" is two index ranges: paying the same address again
-- and again (the usual case) costs nothing here.
ALTER TABLE withdrawals ADD KEY idx_withdrawals_to_edge (client_id, chain, to_edge, to_address);

-- One row per (client, chain, asset) with limits. A NULL limit is no limit. Creating a withdrawal locks
-- this row (SELECT … FOR UPDATE) in the transaction that inserts it, so concurrent creates of one
-- client and asset are serialized and cannot exceed daily_limit between them (only when daily_limit or
-- per_minute is set). Usage is counted from the moment daily_limit is set (policy_usage).
CREATE TABLE withdrawal_policies (
    client_id            BIGINT UNSIGNED NOT NULL,
    chain                VARCHAR(32)   NOT NULL,
    asset                VARCHAR(32)   NOT NULL,
    max_amount           DECIMAL(65,0) NULL COMMENT 'per-withdrawal maximum (base units)',
    daily_limit          DECIMAL(65,0) NULL COMMENT 'rolling 24 h total of withdrawals not FAILED or CANCELED',
    per_minute           INT UNSIGNED  NULL COMMENT 'velocity: withdrawals created in the last 60 s',
    approval_threshold   DECIMAL(65,0) NULL COMMENT 'amounts above it wait in AWAITING_APPROVAL for one approver',
    two_person_threshold DECIMAL(65,0) NULL COMMENT 'amounts above it need two distinct approvers',
    updated_at           DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (client_id, chain, asset),
    CONSTRAINT fk_policies_client FOREIGN KEY (client_id) REFERENCES api_clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Usage per minute bucket of (client, chain, asset): the rolling 24 h total is the sum of at most 1440
-- rows whatever the volume. Written in the create transaction under the policy row's lock; a withdrawal
-- that moves to FAILED or CANCELED gives its amount back (store.Transition, through
-- policy_consumptions, which records exactly what each withdrawal took).
CREATE TABLE policy_usage (
    client_id BIGINT UNSIGNED NOT NULL,
    chain     VARCHAR(32)   NOT NULL,
    asset     VARCHAR(32)   NOT NULL,
    bucket    DATETIME      NOT NULL COMMENT 'the minute (UTC) the withdrawals were created in',
    amount    DECIMAL(65,0) NOT NULL,
    PRIMARY KEY (client_id, chain, asset, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE policy_consumptions (
    withdrawal_id VARCHAR(36)   PRIMARY KEY,
    client_id     BIGINT UNSIGNED NOT NULL,
    chain         VARCHAR(32)   NOT NULL,
    asset         VARCHAR(32)   NOT NULL,
    bucket        DATETIME      NOT NULL,
    amount        DECIMAL(65,0) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Destination lists. client_id 0 is the global list (deny only). A client with any 'allow' row may only
-- withdraw to its allowed addresses; a 'deny' row (the client's or the global one) always refuses.
CREATE TABLE address_lists (
    client_id  BIGINT UNSIGNED NOT NULL,
    address    CHAR(42)     NOT NULL COMMENT 'checksummed',
    kind       VARCHAR(8)   NOT NULL COMMENT 'allow or deny',
    reason     VARCHAR(255) NOT NULL DEFAULT '',
    created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (client_id, kind, address)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Why a withdrawal waits in AWAITING_APPROVAL, and how many distinct approvers release it.
CREATE TABLE withdrawal_holds (
    withdrawal_id      VARCHAR(36)  PRIMARY KEY,
    required_approvals TINYINT UNSIGNED NOT NULL,
    reason             VARCHAR(255) NOT NULL,
    created_at         DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    CONSTRAINT fk_holds_withdrawal FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per approver per withdrawal: the primary key makes an approver count once.
CREATE TABLE withdrawal_approvals (
    withdrawal_id VARCHAR(36)  NOT NULL,
    approver      VARCHAR(100) NOT NULL COMMENT 'the approving API key''s name',
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (withdrawal_id, approver),
    CONSTRAINT fk_approvals_withdrawal FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Scoped API keys of a client, beside the client's original key (api_clients.key_hash, which keeps the
-- scopes withdrawals:read, withdrawals:write and webhooks:manage). Rotation: add a key, move callers to
-- it, revoke the old one (or let it expire); both are valid in between.
CREATE TABLE api_keys (
    id         BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    client_id  BIGINT UNSIGNED NOT NULL,
    name       VARCHAR(100) NOT NULL COMMENT 'who holds it; the approver name for withdrawals:approve',
    key_hash   BINARY(32)   NOT NULL,
    key_prefix VARCHAR(16)  NOT NULL,
    scopes     VARCHAR(255) NOT NULL COMMENT 'space-separated',
    expires_at DATETIME(6)  NULL,
    revoked_at DATETIME(6)  NULL,
    created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_api_keys_hash (key_hash),
    UNIQUE KEY uq_api_keys_name (client_id, name),
    CONSTRAINT fk_api_keys_client FOREIGN KEY (client_id) REFERENCES api_clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Webhooks: endpoints per client, events written by store.Transition in the transaction of the status
-- change (the outbox), one delivery per (event, endpoint) with its retry schedule, and every attempt.
CREATE TABLE webhook_endpoints (
    id                 BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    client_id          BIGINT UNSIGNED NOT NULL,
    url                VARCHAR(2048) NOT NULL,
    secret             VARCHAR(128)  NOT NULL COMMENT 'HMAC key of the signature; the client holds a copy',
    prev_secret        VARCHAR(128)  NULL     COMMENT 'the secret before the last rotation, still signing until prev_expires_at',
    prev_expires_at    DATETIME(6)   NULL,
    enabled            BOOLEAN       NOT NULL DEFAULT TRUE,
    created_at         DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_webhook_endpoints_client (client_id, enabled),
    CONSTRAINT fk_webhook_endpoints_client FOREIGN KEY (client_id) REFERENCES api_clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE webhook_events (
    id            CHAR(36)     PRIMARY KEY COMMENT 'the event id receivers de-duplicate on',
    client_id     BIGINT UNSIGNED NOT NULL,
    withdrawal_id VARCHAR(36)  NOT NULL,
    type          VARCHAR(40)  NOT NULL,
    payload       MEDIUMTEXT   NOT NULL COMMENT 'the exact body delivered (and signed)',
    created_at    DATETIME(6)  NOT NULL,
    KEY idx_webhook_events_withdrawal (withdrawal_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A delivery is deliverable when due and when no earlier one (smaller seq) of the same endpoint and
-- withdrawal is still pending: per-endpoint order per withdrawal.
CREATE TABLE webhook_deliveries (
    id               BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    event_id         CHAR(36)     NOT NULL,
    endpoint_id      BIGINT UNSIGNED NOT NULL,
    withdrawal_id    VARCHAR(36)  NOT NULL,
    seq              INT UNSIGNED NOT NULL,
    state            VARCHAR(12)  NOT NULL DEFAULT 'pending' COMMENT 'pending, delivered, dead',
    attempts         INT UNSIGNED NOT NULL DEFAULT 0,
    last_status_code INT          NULL,
    last_error       VARCHAR(255) NULL,
    next_attempt_at  DATETIME(6)  NOT NULL,
    created_at       DATETIME(6)  NOT NULL,
    delivered_at     DATETIME(6)  NULL,
    UNIQUE KEY uq_webhook_deliveries_order (endpoint_id, withdrawal_id, seq),
    KEY idx_webhook_deliveries_due (state, next_attempt_at),
    CONSTRAINT fk_webhook_deliveries_event FOREIGN KEY (event_id) REFERENCES webhook_events (id),
    CONSTRAINT fk_webhook_deliveries_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE webhook_attempts (
    id          BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    delivery_id BIGINT UNSIGNED NOT NULL,
    status_code INT          NULL COMMENT 'NULL when no HTTP answer came',
    error       VARCHAR(255) NOT NULL DEFAULT '',
    latency_ms  INT UNSIGNED NOT NULL,
    created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_webhook_attempts_delivery (delivery_id, id),
    CONSTRAINT fk_webhook_attempts_delivery FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
DROP TABLE api_keys;
DROP TABLE withdrawal_approvals;
DROP TABLE withdrawal_holds;
DROP TABLE address_lists;
DROP TABLE policy_consumptions;
DROP TABLE policy_usage;
DROP TABLE withdrawal_policies;
ALTER TABLE withdrawals DROP KEY idx_withdrawals_to_edge;
ALTER TABLE withdrawals DROP COLUMN to_edge;
ALTER TABLE withdrawals DROP KEY idx_withdrawals_policy;
ALTER TABLE withdrawal_history MODIFY from_status VARCHAR(16) NULL, MODIFY to_status VARCHAR(16) NOT NULL;
ALTER TABLE withdrawals MODIFY status VARCHAR(16) NOT NULL;
