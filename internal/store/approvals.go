package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrAlreadyApproved is returned when an approver approves a withdrawal a second time: the two-person
// rule counts distinct approvers.
var ErrAlreadyApproved = errors.New("already approved by this approver")

// Hold is why a withdrawal waits in AWAITING_APPROVAL and who approved it so far.
type Hold struct {
	RequiredApprovals int
	Reason            string
	Approvers         []string
}

// HoldOf returns the hold of withdrawal id (ErrNotFound when it was never held).
func (s *Store) HoldOf(ctx context.Context, id string) (*Hold, error) {
	return holdOf(ctx, s.DB, id)
}

func holdOf(ctx context.Context, q querier, id string) (*Hold, error) {
	var h Hold
	err := q.QueryRowContext(ctx, `SELECT required_approvals, reason FROM withdrawal_holds WHERE withdrawal_id = ?`, id).
		Scan(&h.RequiredApprovals, &h.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("hold of %s: %w", id, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT approver FROM withdrawal_approvals WHERE withdrawal_id = ? ORDER BY created_at, approver`, id)
	if err != nil {
		return nil, fmt.Errorf("approvals of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		h.Approvers = append(h.Approvers, a)
	}
	return &h, rows.Err()
}

// Approve records approver's approval of held withdrawal id. When the approvals reach the hold's
// required count, the withdrawal moves to PENDING and release runs in the same transaction (it sends
// the tx-request message). It returns the hold after the approval and whether it was released;
// ErrConflict when the withdrawal is not AWAITING_APPROVAL, ErrAlreadyApproved for a repeat.
func (s *Store) Approve(ctx context.Context, id, approver string, release func(tx *sql.Tx) error) (*Hold, bool, error) {
	var (
		h        *Hold
		released bool
	)
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		h, released = nil, false
		w, err := s.LockWithdrawal(ctx, tx, id)
		if err != nil {
			return err
		}
		if w.Status != AwaitingApproval {
			return fmt.Errorf("approve %s (%s): %w", id, w.Status, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_approvals (withdrawal_id, approver) VALUES (?,?)`, id, approver); err != nil {
			if IsDuplicate(err) {
				return ErrAlreadyApproved
			}
			return fmt.Errorf("approve %s: %w", id, err)
		}
		if h, err = holdOf(ctx, tx, id); err != nil {
			return err
		}
		if len(h.Approvers) < h.RequiredApprovals {
			return nil
		}
		if err := s.Transition(ctx, tx, id, AwaitingApproval, Pending, "approved by "+strings.Join(h.Approvers, ", "), ActorApprover, Change{}); err != nil {
			return err
		}
		released = true
		return release(tx)
	})
	if err != nil {
		return nil, false, err
	}
	return h, released, nil
}

// Reject cancels held withdrawal id with approver's reason (ErrConflict when it is not
// AWAITING_APPROVAL). The reason is the withdrawal's error message.
func (s *Store) Reject(ctx context.Context, id, approver, reason string) error {
	msg := "rejected by " + approver
	if reason != "" {
		msg += ": " + reason
	}
	typ := "rejected"
	return s.InTx(ctx, func(tx *sql.Tx) error {
		return s.Transition(ctx, tx, id, AwaitingApproval, Canceled, msg, ActorApprover, Change{ErrorType: &typ, ErrorMessage: &msg})
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
