package policy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-custody/sluice/internal/store"
)

// clientView is what the policy knows of one client without asking the database: its limits per
// chain/asset and its destination lists merged with the global denylist. The 24 h total and the velocity
// count are never cached: with either set, Admit reads the row again under its lock.
type clientView struct {
	limits   map[[2]string]*Limits // absent: no policy row
	deny     map[string]bool       // checksummed address
	allow    map[string]bool
	anyAllow bool
	exp      time.Time
}

// viewCache holds clientViews for ttl: changing a limit or a list takes up to ttl to bite, as disabling
// an API key does in the API's key cache.
type viewCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[int64]*clientView
}

// get returns client's view, loading it through tx when it is missing or expired. Through the caller's
// transaction, not the pool: a create holding its transaction's connection while waiting for a second
// one would deadlock the pool under load.
func (c *viewCache) get(ctx context.Context, tx *sql.Tx, client int64, now time.Time) (*clientView, error) {
	c.mu.Lock()
	v := c.m[client]
	c.mu.Unlock()
	if v != nil && now.Before(v.exp) {
		return v, nil
	}
	v, err := loadView(ctx, tx, client)
	if err != nil {
		return nil, err
	}
	v.exp = now.Add(c.ttl)
	c.mu.Lock()
	if len(c.m) > 10000 {
		clear(c.m)
	}
	c.m[client] = v
	c.mu.Unlock()
	return v, nil
}

// drop forgets client's view: its next create reads the limits and lists again.
func (c *viewCache) drop(client int64) {
	c.mu.Lock()
	delete(c.m, client)
	c.mu.Unlock()
}

func loadView(ctx context.Context, db *sql.Tx, client int64) (*clientView, error) {
	v := &clientView{limits: map[[2]string]*Limits{}, deny: map[string]bool{}, allow: map[string]bool{}}
	rows, err := db.QueryContext(ctx, `SELECT client_id, address, kind FROM address_lists WHERE client_id IN (0, ?)`, client)
	if err != nil {
		return nil, fmt.Errorf("policy lists: %w", err)
	}
	for rows.Next() {
		var id int64
		var addr, kind string
		if err := rows.Scan(&id, &addr, &kind); err != nil {
			rows.Close()
			return nil, fmt.Errorf("policy lists: %w", err)
		}
		switch {
		case kind == "deny":
			v.deny[addr] = true
		case kind == "allow" && id == client:
			v.allow[addr], v.anyAllow = true, true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policy lists: %w", err)
	}
	rows, err = db.QueryContext(ctx, `SELECT chain, asset FROM withdrawal_policies WHERE client_id = ?`, client)
	if err != nil {
		return nil, fmt.Errorf("policies of client %d: %w", client, err)
	}
	var keys [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		l, err := loadLimits(ctx, db, client, k[0], k[1], false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v.limits[k] = l
	}
	return v, nil
}
