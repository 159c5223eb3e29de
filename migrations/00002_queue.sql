-- +goose Up
-- The MySQL queue backend (queue/mysqlq) and the transactional outbox relayed to SQS (queue/outbox).
-- Times are UTC (the code writes UTC_TIMESTAMP(6), whatever the session time zone).

-- One row per message present in a queue (visible, delayed or in flight). A receive claims rows with
-- SELECT … FOR UPDATE SKIP LOCKED, moves visible_at forward and sets a fresh receipt; Delete removes the
-- row. A row of a FIFO group is only deliverable while no row with a smaller id of the same
-- (queue, group_id) exists: ungrouped rows are claimed off idx_queue_messages_claim (group_id NULL),
-- group heads are found with a loose scan of idx_queue_messages_group.
CREATE TABLE queue_messages (
    id            BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    queue         VARCHAR(80)  NOT NULL,
    msg_id        CHAR(36)     NOT NULL COMMENT 'the message id consumers see; kept when redriven to the DLQ',
    body          MEDIUMBLOB   NOT NULL,
    group_id      VARCHAR(128) NULL     COMMENT 'FIFO group: strict order within (queue, group_id)',
    dedup_id      VARCHAR(128) NULL,
    receive_count INT UNSIGNED NOT NULL DEFAULT 0,
    receipt       VARCHAR(64)  NULL     COMMENT 'names the current delivery; a new one on every receive',
    visible_at    DATETIME(6)  NOT NULL COMMENT 'deliverable from then on (send time + delay, or end of visibility)',
    created_at    DATETIME(6)  NOT NULL COMMENT 'first enqueue; retention counts from here, as on SQS',
    KEY idx_queue_messages_claim (queue, group_id, visible_at, id),
    KEY idx_queue_messages_group (queue, group_id, id),
    KEY idx_queue_messages_dedup (queue, dedup_id),
    KEY idx_queue_messages_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Deduplication ids seen per queue: a send whose (queue, dedup_id) is here and not expired, or whose
-- first message is still queued, is dropped (SQS's 5-minute deduplication interval).
CREATE TABLE queue_dedup (
    queue      VARCHAR(80)  NOT NULL,
    dedup_id   VARCHAR(128) NOT NULL,
    token      CHAR(32)     NOT NULL COMMENT 'random per accepted send: tells the sender whether its send won',
    expires_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (queue, dedup_id),
    KEY idx_queue_dedup_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Transactional outbox: messages written in the same transaction as the state change that implies them,
-- relayed to the queue backend (SQS) by outbox.Relay and deleted once sent. Rows of one (queue, group_id)
-- are relayed strictly in id order.
CREATE TABLE outbox (
    id              BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    queue           VARCHAR(80)  NOT NULL,
    body            MEDIUMBLOB   NOT NULL,
    group_id        VARCHAR(128) NULL,
    dedup_id        VARCHAR(128) NULL,
    delay_ms        BIGINT UNSIGNED NOT NULL DEFAULT 0,
    attempts        INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6)  NOT NULL,
    last_error      TEXT         NULL,
    created_at      DATETIME(6)  NOT NULL,
    KEY idx_outbox_group (queue, group_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE outbox;
DROP TABLE queue_dedup;
DROP TABLE queue_messages;
