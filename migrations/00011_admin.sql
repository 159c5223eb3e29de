-- +goose Up
-- Operators of the admin API (/admin/v1) and the ops dashboard. Passwords are argon2id PHC strings;
-- a disabled operator keeps its row (the audit log names it) but cannot log in or use a token.
CREATE TABLE operators (
    id            BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    disabled      TINYINT(1)   NOT NULL DEFAULT 0,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_login    DATETIME(6)  NULL,
    UNIQUE KEY uq_operators_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Refresh tokens: only their SHA-256 is kept. Each use rotates the token within its family; a used
-- token presented again means it was stolen, and the whole family is revoked.
CREATE TABLE operator_refresh_tokens (
    token_hash BINARY(32)   NOT NULL PRIMARY KEY,
    family     VARCHAR(36)  NOT NULL,
    username   VARCHAR(64)  NOT NULL,
    expires_at DATETIME(6)  NOT NULL,
    used_at    DATETIME(6)  NULL,
    revoked    TINYINT(1)   NOT NULL DEFAULT 0,
    created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_refresh_family (family),
    KEY idx_refresh_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per action request id (POST /admin/v1/actions, dry runs excepted): what was asked (and the
-- hash of it, so the same id with another body is refused), its state, and the response given, which a
-- replay of the id gets again. A row is written before the action is performed (status doing, with a
-- lease): after a crash the same id performs it again through the spec's idempotent Do, never twice
-- concurrently.
CREATE TABLE action_requests (
    request_id   VARCHAR(64)  NOT NULL PRIMARY KEY,
    body_hash    BINARY(32)   NOT NULL,
    action       VARCHAR(64)  NOT NULL,
    target       VARCHAR(255) NOT NULL,
    requested_by VARCHAR(64)  NOT NULL,
    status       VARCHAR(24)  NOT NULL,
    request      MEDIUMTEXT   NOT NULL,
    http_status  INT          NOT NULL DEFAULT 0,
    response     MEDIUMTEXT   NULL,
    lease_until  DATETIME(6)  NULL,
    created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_action_requests_status (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Two-person requests waiting for (or decided by) a different approver.
CREATE TABLE approval_requests (
    id           VARCHAR(36)   NOT NULL PRIMARY KEY,
    request_id   VARCHAR(64)   NOT NULL,
    status       VARCHAR(16)   NOT NULL,
    requested_by VARCHAR(64)   NOT NULL,
    created_at   DATETIME(6)   NOT NULL,
    expires_at   DATETIME(6)   NOT NULL,
    decided_by   VARCHAR(64)   NOT NULL DEFAULT '',
    decided_at   DATETIME(6)   NULL,
    reason       VARCHAR(1024) NOT NULL DEFAULT '',
    UNIQUE KEY uq_approval_requests_request (request_id),
    KEY idx_approval_requests_status (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The audit log: append-only, each row carrying the hash of the previous one (admin/audit.go fixes the
-- encoding). ids are assigned by the appender under the audit_head lock, so they are contiguous: a
-- deleted row shows as a gap, an edited or moved one as a hash that does not recompute.
CREATE TABLE audit_log (
    id        BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    at        DATETIME(6)     NOT NULL,
    operator  VARCHAR(64)     NOT NULL,
    remote    VARCHAR(64)     NOT NULL,
    kind      VARCHAR(32)     NOT NULL,
    what      VARCHAR(255)    NOT NULL,
    detail    MEDIUMTEXT      NOT NULL,
    outcome   VARCHAR(64)     NOT NULL,
    prev_hash CHAR(64)        NOT NULL,
    hash      CHAR(64)        NOT NULL,
    KEY idx_audit_operator (operator, id),
    KEY idx_audit_kind (kind, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row: the last appended id and hash. Appenders lock it (SELECT … FOR UPDATE), which serializes
-- appends, and verification checks the log still ends where the head says (rows deleted from the end).
CREATE TABLE audit_head (
    id        TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    last_id   BIGINT UNSIGNED  NOT NULL,
    last_hash CHAR(64)         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '');

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE approval_requests;
DROP TABLE action_requests;
DROP TABLE operator_refresh_tokens;
DROP TABLE operators;
