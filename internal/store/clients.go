package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
)

// APIClient is an exchange backend (or dashboard user) allowed to call the API.
type APIClient struct {
	ID   int64
	Name string
}

// HashAPIKey is how keys are stored and looked up: only the SHA-256 of a high-entropy key is kept.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// EnsureAPIClient registers key for client name, replacing that client's previous key.
func (s *Store) EnsureAPIClient(ctx context.Context, name, key string) (*APIClient, error) {
	prefix := key
	if len(prefix) > 8 {
		prefix = prefix[:8]
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO api_clients (name, key_hash, key_prefix) VALUES (?,?,?)
		ON DUPLICATE KEY UPDATE key_hash = VALUES(key_hash), key_prefix = VALUES(key_prefix), disabled_at = NULL`,
		name, HashAPIKey(key), prefix); err != nil {
		return nil, fmt.Errorf("register api client %s: %w", name, err)
	}
	var c APIClient
	if err := s.DB.QueryRowContext(ctx, `SELECT id, name FROM api_clients WHERE name = ?`, name).Scan(&c.ID, &c.Name); err != nil {
		return nil, fmt.Errorf("load api client %s: %w", name, err)
	}
	return &c, nil
}

// ClientByKey finds the enabled client owning key.
func (s *Store) ClientByKey(ctx context.Context, key string) (*APIClient, error) {
	var c APIClient
	err := s.DB.QueryRowContext(ctx, `SELECT id, name FROM api_clients WHERE key_hash = ? AND disabled_at IS NULL`,
		HashAPIKey(key)).Scan(&c.ID, &c.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	return &c, nil
}
