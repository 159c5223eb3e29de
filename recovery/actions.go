package recovery

// Client actions on a signed transaction. The API holds no keys: POST /v1/withdrawals/{id}/speed-up
// records a tx_actions row against the transaction's current attempt, and recovery performs it here,
// at the start of each stuck sweep of the chain, with the same bump as a stuck transaction (same nonce,
// same payload, fees.Estimator's Replacement: at least +10%, never over the cap). A speed-up asked
// again against the same attempt is the same row (one bump); one whose attempt was replaced meanwhile
// (by another speed-up, a stuck bump, another instance) is done without a second bump.

import (
	"context"
	"fmt"

	"github.com/sluice-custody/sluice/internal/store"
)

// Actions is what one round of client actions of a chain did.
type Actions struct {
	Done, Bumped, Waiting int
}

// PerformActions performs the pending client actions of one chain.
func (s *Service) PerformActions(ctx context.Context, name string) (Actions, error) {
	cd, ok := s.chains[name]
	if !ok {
		return Actions{}, fmt.Errorf("chain %q is not configured", name)
	}
	as, err := s.store.PendingTxActions(ctx, name)
	if err != nil {
		return Actions{}, err
	}
	var (
		out      Actions
		firstErr error
	)
	for _, a := range as {
		result, err := s.perform(ctx, cd, a)
		if err != nil {
			s.log.Warn("client action", "chain", name, "action_id", a.ID, "kind", a.Kind, "withdrawal_id", a.WithdrawalID, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if result == "" {
			out.Waiting++
			continue
		}
		ok, err := s.store.FinishTxAction(ctx, a.ID, result)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			out.Done++
			if result == "bumped" {
				out.Bumped++
			}
			s.log.Info("client action performed", "chain", name, "action_id", a.ID, "kind", a.Kind, "withdrawal_id", a.WithdrawalID, "result", result)
		}
	}
	return out, firstErr
}

// perform does one action; it returns its result, or "" when the action must wait (its transaction is
// signed but not broadcast yet: the broadcaster sends the current attempt first).
func (s *Service) perform(ctx context.Context, cd ChainDeps, a *store.TxAction) (string, error) {
	if a.Kind != store.ActionSpeedUp {
		return "unknown action " + a.Kind, nil
	}
	st, err := s.store.GetSentTx(ctx, a.SentTxID)
	if err != nil {
		return "", err
	}
	switch {
	case st.Status == store.TxSigned:
		return "", nil
	case st.Status != store.TxBroadcasted:
		return "not in flight: " + st.Status, nil
	case st.Hash != a.BaseHash:
		return "replaced by " + st.Hash, nil
	}
	out, err := s.bump(ctx, cd, st, nil)
	if err != nil {
		return "", err
	}
	switch out {
	case bumped:
		return "bumped", nil
	case atCap:
		return "at fee cap", nil
	}
	return "replaced or settled meanwhile", nil
}
