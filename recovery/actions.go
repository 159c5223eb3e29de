package recovery

// Client actions on a signed transaction. The API holds no keys: POST /v1/withdrawals/{id}/speed-up
// (and /cancel after signing) records a tx_actions row against the transaction's current attempt, and
// recovery performs it here,
// at the start of each stuck sweep of the chain, with the same bump as a stuck transaction (same nonce,
// same payload, fees.Estimator's Replacement: at least +10%, never over the cap). A speed-up asked
// again against the same attempt is the same row (one bump); one whose attempt was replaced meanwhile
// (by another speed-up, a stuck bump, another instance) is done without a second bump.
//
// A cancel replaces the payment with a zero-value self-transfer at the same nonce (a new attempt of the
// same sent transaction, tx_attempts.kind cancel) with fees bumped like a speed-up; the stuck sweep
// bumps it further like any attempt. The monitor decides: the cancel mined → CANCELED, the payment
// mined → CONFIRMED. One cancel per sent transaction; a cancel asked again is the same row.

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/txsend"

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
	if a.Kind != store.ActionSpeedUp && a.Kind != store.ActionCancel && a.Kind != store.ActionCancelItem {
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
		return "not in flight: " + st.Status, nil // mined: the monitor settles by whichever attempt it was
	case a.Kind == store.ActionSpeedUp && st.Hash != a.BaseHash:
		return "replaced by " + st.Hash, nil
	}
	if a.Kind == store.ActionCancelItem {
		return s.cancelItem(ctx, cd, st, a)
	}
	var out outcome
	if a.Kind == store.ActionCancel {
		kind, err := s.store.AttemptKind(ctx, s.store.DB, st.Hash)
		if err != nil {
			return "", err
		}
		if kind == store.AttemptCancel {
			return "already canceling: " + st.Hash, nil
		}
		out, err = s.replace(ctx, cd, st, nil, cancelOf, func(ctx context.Context, tx *sql.Tx, next *store.SentTx) error {
			return s.store.MarkCancelAttempt(ctx, tx, next.Hash)
		})
		if err != nil {
			return "", err
		}
		if out == bumped {
			return "cancel attempt signed", nil
		}
	} else if out, err = s.bump(ctx, cd, st, nil); err != nil {
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

// cancelGas is the gas of a plain value transfer to an address without code: the self-transfer of a
// cancel.
const cancelGas = 21000

// cancelOf is the cancel attempt of st with fees f: a zero-value self-transfer from=to=the wallet at
// st's nonce, recorded as a new attempt of the same sent transaction. The unique (chain, from, nonce)
// rule "one payload per nonce" holds in spirit: the payment and its cancel are attempts of one recorded
// transaction at one nonce, and a nonce is mined once, so exactly one of them can ever take effect; the
// monitor settles the withdrawal by the one that did.
func cancelOf(st *store.SentTx, f fees.Fees) (txsend.Candidate, error) {
	from := common.HexToAddress(st.From)
	return txsend.Candidate{Chain: st.Chain, ChainID: st.ChainID, From: from, To: from, Gas: cancelGas, Fees: f,
		CorrelationID: st.CorrelationID, Replaces: st}, nil
}
