package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The API key scopes.
const (
	ScopeWithdrawalsRead    = "withdrawals:read"
	ScopeWithdrawalsWrite   = "withdrawals:write"
	ScopeWebhooksManage     = "webhooks:manage"
	ScopeWithdrawalsApprove = "withdrawals:approve"
)

// legacyScopes are those of a client's original key (api_clients.key_hash): everything but approving,
// which needs a key of its own so that the key creating a withdrawal cannot also release it.
var legacyScopes = []string{ScopeWithdrawalsRead, ScopeWithdrawalsWrite, ScopeWebhooksManage}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool {
	switch s {
	case ScopeWithdrawalsRead, ScopeWithdrawalsWrite, ScopeWebhooksManage, ScopeWithdrawalsApprove:
		return true
	}
	return false
}

// APIClient is an exchange backend (or dashboard user) allowed to call the API, as seen through the key
// that authenticated: KeyName names that key ("" for the client's original key) and Scopes are its own.
type APIClient struct {
	ID      int64
	Name    string
	KeyName string
	Scopes  []string
}

// Can reports whether the key has scope.
func (c *APIClient) Can(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Actor names the key for history and approvals: "client" or "client/key".
func (c *APIClient) Actor() string {
	if c.KeyName == "" {
		return c.Name
	}
	return c.Name + "/" + c.KeyName
}

// HashAPIKey is how keys are stored and looked up: only the SHA-256 of a high-entropy key is kept.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func keyPrefix(key string) string {
	if len(key) > 8 {
		return key[:8]
	}
	return key
}

// EnsureAPIClient registers key for client name, replacing that client's previous key.
func (s *Store) EnsureAPIClient(ctx context.Context, name, key string) (*APIClient, error) {
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO api_clients (name, key_hash, key_prefix) VALUES (?,?,?)
		ON DUPLICATE KEY UPDATE key_hash = VALUES(key_hash), key_prefix = VALUES(key_prefix), disabled_at = NULL`,
		name, HashAPIKey(key), keyPrefix(key)); err != nil {
		return nil, fmt.Errorf("register api client %s: %w", name, err)
	}
	c := APIClient{Scopes: legacyScopes}
	if err := s.DB.QueryRowContext(ctx, `SELECT id, name FROM api_clients WHERE name = ?`, name).Scan(&c.ID, &c.Name); err != nil {
		return nil, fmt.Errorf("load api client %s: %w", name, err)
	}
	return &c, nil
}

// AddAPIKey gives client clientID another key, named name (unique per client), with scopes, valid until
// expires (zero: no expiry). Rotation is AddAPIKey of the new key, then RevokeAPIKey of the old one:
// both work in between.
func (s *Store) AddAPIKey(ctx context.Context, clientID int64, name, key string, scopes []string, expires time.Time) error {
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return fmt.Errorf("api key %s: unknown scope %q", name, sc)
		}
	}
	var exp any
	if !expires.IsZero() {
		exp = expires.UTC()
	}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO api_keys (client_id, name, key_hash, key_prefix, scopes, expires_at)
		VALUES (?,?,?,?,?,?)`, clientID, name, HashAPIKey(key), keyPrefix(key), strings.Join(scopes, " "), exp); err != nil {
		return fmt.Errorf("add api key %s: %w", name, err)
	}
	return nil
}

// RevokeAPIKey disables client clientID's key name (ErrNotFound when there is no such live key).
func (s *Store) RevokeAPIKey(ctx context.Context, clientID int64, name string) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE api_keys SET revoked_at = UTC_TIMESTAMP(6) WHERE client_id = ? AND name = ? AND revoked_at IS NULL`,
		clientID, name)
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ClientByKey finds the enabled client owning key, through a live scoped key or the client's original
// key.
func (s *Store) ClientByKey(ctx context.Context, key string) (*APIClient, error) {
	h := HashAPIKey(key)
	var (
		c      APIClient
		scopes string
	)
	err := s.DB.QueryRowContext(ctx, `SELECT c.id, c.name, k.name, k.scopes FROM api_keys k JOIN api_clients c ON c.id = k.client_id
		WHERE k.key_hash = ? AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > UTC_TIMESTAMP(6))
		AND c.disabled_at IS NULL`, h).Scan(&c.ID, &c.Name, &c.KeyName, &scopes)
	if err == nil {
		c.Scopes = strings.Fields(scopes)
		return &c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	err = s.DB.QueryRowContext(ctx, `SELECT id, name FROM api_clients WHERE key_hash = ? AND disabled_at IS NULL`, h).Scan(&c.ID, &c.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	c.Scopes = legacyScopes
	return &c, nil
}
