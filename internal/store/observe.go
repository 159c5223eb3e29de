package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Transitioned is one committed withdrawal status change, as an Observer sees it. From is empty for a
// withdrawal's acceptance (its first status, PENDING).
type Transitioned struct {
	Chain, Asset string
	From, To     Status
	CreatedAt    time.Time // when the API accepted the withdrawal; zero when it could not be read
}

// Observer is told of every committed status change of a withdrawal: the one place metrics count them.
// It is called after the commit, outside the transaction, and must not block.
type Observer interface {
	Transitioned(t Transitioned)
}

// noted is a transition made in a transaction not yet committed; labeled when the caller knew the
// withdrawal's chain, asset and acceptance time, otherwise they are read after the commit.
type noted struct {
	id      string
	t       Transitioned
	labeled bool
}

// track starts collecting tx's transitions, to be reported when it commits.
func (s *Store) track(tx *sql.Tx) {
	if s.observer == nil {
		return
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = map[*sql.Tx][]noted{}
	}
	s.pending[tx] = []noted{}
}

// settle reports tx's transitions when it committed and forgets them either way. The labels the
// transitions lack are read in one query after the commit (they never change), so a transaction moving
// a batch of withdrawals costs one lookup, outside its locks.
func (s *Store) settle(ctx context.Context, tx *sql.Tx, committed bool) {
	if s.observer == nil {
		return
	}
	s.pendingMu.Lock()
	ns := s.pending[tx]
	delete(s.pending, tx)
	s.pendingMu.Unlock()
	if !committed || len(ns) == 0 {
		return
	}
	var ids []string
	for _, n := range ns {
		if !n.labeled {
			ids = append(ids, n.id)
		}
	}
	labels := map[string]Transitioned{}
	if len(ids) > 0 {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		labels, _ = s.labels(lctx, s.DB, ids) // unreadable labels are reported as "unknown": counted still
	}
	for _, n := range ns {
		if !n.labeled {
			l, ok := labels[n.id]
			if !ok {
				l = Transitioned{Chain: "unknown", Asset: "unknown"}
			}
			n.t.Chain, n.t.Asset, n.t.CreatedAt = l.Chain, l.Asset, l.CreatedAt
		}
		s.observer.Transitioned(n.t)
	}
}

// labels reads the chain, asset and acceptance time of withdrawals ids.
func (s *Store) labels(ctx context.Context, q querier, ids []string) (map[string]Transitioned, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT id, chain, asset, created_at FROM withdrawals WHERE id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("withdrawal labels: %w", err)
	}
	defer rows.Close()
	out := map[string]Transitioned{}
	for rows.Next() {
		var (
			id string
			t  Transitioned
		)
		if err := rows.Scan(&id, &t.Chain, &t.Asset, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("withdrawal labels: %w", err)
		}
		out[id] = t
	}
	return out, rows.Err()
}

// note records a transition of withdrawal id made in tx, with its labels when the caller knows them
// (known may be nil): reported at commit when InTx runs tx, at once otherwise (a transaction the store
// did not begin, whose outcome it cannot see).
func (s *Store) note(ctx context.Context, tx *sql.Tx, id string, from, to Status, known *Transitioned) error {
	if s.observer == nil {
		return nil
	}
	n := noted{id: id, t: Transitioned{From: from, To: to}}
	if known != nil {
		n.t.Chain, n.t.Asset, n.t.CreatedAt, n.labeled = known.Chain, known.Asset, known.CreatedAt, true
	}
	s.pendingMu.Lock()
	ns, tracked := s.pending[tx]
	if tracked {
		s.pending[tx] = append(ns, n)
	}
	s.pendingMu.Unlock()
	if tracked {
		return nil
	}
	if !n.labeled {
		l, err := s.labels(ctx, tx, []string{id})
		if err != nil {
			return fmt.Errorf("withdrawal %s %s→%s: %w", id, from, to, err)
		}
		n.t.Chain, n.t.Asset, n.t.CreatedAt = l[id].Chain, l[id].Asset, l[id].CreatedAt
	}
	s.observer.Transitioned(n.t)
	return nil
}
