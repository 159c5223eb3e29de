package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Withdrawals that wait for funds. A withdrawal no unfrozen hot wallet can fund stays PENDING: the first
// time it is found so, its history gets one row (reason awaiting_funds), its waiting column says
// awaiting_funds (the API shows it) and the withdrawal.awaiting_funds webhook event goes out; it is looked
// at again every round (the batcher) or every fundsRecheck (the single path), and paid as soon as a
// wallet can fund it. It FAILS with INSUFFICIENT_FUNDS only when its amount is above the asset's
// max_withdrawal, or once it has waited the chain's funds_deadline.

// fundsRecheck is how often the single path (no batcher) looks again at a withdrawal that waits.
const fundsRecheck = 5 * time.Second

// busyWait is how long the single path waits when every wallet that could pay has its fill of
// transactions in flight.
const busyWait = 2 * time.Second

// holdKind says why a withdrawal is not signed now.
type holdKind int

const (
	holdNone   holdKind = iota
	holdFrozen          // every hot wallet of its chain is frozen
	holdFunds           // no unfrozen wallet can fund it
	holdBusy            // wallets could fund it but have their fill of transactions in flight
	holdTooBig          // above the asset's max_withdrawal: it fails
)

// errAllFrozen is the cause of holdFrozen.
var errAllFrozen = fmt.Errorf("%w: every hot wallet of the chain", errWalletFrozen)

// awaitingReason is the history reason of a withdrawal that starts waiting for funds.
func awaitingReason(cause error) string {
	return fmt.Sprintf("%s: no hot wallet can fund it yet (%v); it is paid once one can", store.WaitingAwaitingFunds, cause)
}

// tooBig reports an amount above the asset's max_withdrawal.
func tooBig(a *config.Asset, amount *big.Int) error {
	if a == nil || !a.MaxWithdrawal.IsSet() || a.MaxWithdrawal.Int().Sign() == 0 || amount.Cmp(a.MaxWithdrawal.Int()) <= 0 {
		return nil
	}
	return txerr.New(txerr.InsufficientFunds, "above_max_withdrawal",
		fmt.Errorf("amount %s is above the %s max_withdrawal %s", amount, a.Symbol, a.MaxWithdrawal.Int()))
}

// pastDeadline reports a wait longer than the chain's funds_deadline.
func pastDeadline(c config.Chain, since *time.Time, cause error) error {
	if since == nil || c.FundsDeadline.Duration <= 0 || time.Since(*since) < c.FundsDeadline.Duration {
		return nil
	}
	return txerr.New(txerr.InsufficientFunds, "funds_deadline",
		fmt.Errorf("no hot wallet could fund it within the funds_deadline of %s (waiting since %s): %v",
			c.FundsDeadline.Duration, since.UTC().Format(time.RFC3339), cause))
}

// chooseOne picks the hot wallet that pays w on its own. A zero address with holdNone means the chain
// or asset is not signable at all (sign then fails it with the reason).
func (s *Signer) chooseOne(ctx context.Context, w *store.Withdrawal) (common.Address, holdKind, error, error) {
	cd, ok := s.chains[w.Chain]
	if !ok {
		return common.Address{}, holdNone, nil, nil
	}
	asset, ok := cd.Config.Asset(w.Asset)
	if !ok || len(cd.Config.HotWallets) == 0 {
		return common.Address{}, holdNone, nil, nil
	}
	if err := tooBig(asset, w.Amount); err != nil {
		return common.Address{}, holdTooBig, err, nil
	}
	st, err := s.readWallets(ctx, cd, asset)
	if err != nil {
		return common.Address{}, holdNone, nil, err
	}
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return common.Address{}, holdNone, nil, err
	}
	c := singleCost(cd.Config, asset, f.MaxFeePerGas)
	plans, unfunded, _ := planWallets(st, []fundItem{{ID: w.ID, Amount: w.Amount}}, c)
	switch {
	case len(plans) == 1:
		return plans[0].Wallet, holdNone, nil, nil
	case allFrozen(st):
		return common.Address{}, holdFrozen, errAllFrozen, nil
	case len(unfunded) == 1:
		return common.Address{}, holdFunds, shortOf(asset, w.Amount, st), nil
	}
	return common.Address{}, holdBusy, fmt.Errorf("every hot wallet able to pay has %d transactions in flight (max_in_flight)", cd.Config.MaxInFlight), nil
}

// singleCost is planCost for transfers signed one per transaction.
func singleCost(c config.Chain, asset *config.Asset, maxFee *big.Int) planCost {
	per := uint64(GasNativeSingle)
	if !asset.Native() {
		per = GasERC20SingleNew + GasERC20SingleNew*gasMargin/100
	}
	return planCost{Native: asset.Native(), MaxFee: maxFee, PerItem: per, MaxPerWallet: 1, MinShare: 1, MaxInFlight: c.MaxInFlight}
}

func allFrozen(ws []walletState) bool {
	for _, w := range ws {
		if !w.Frozen {
			return false
		}
	}
	return len(ws) > 0
}

// shortOf says what the richest unfrozen wallet holds against what is asked.
func shortOf(asset *config.Asset, amount *big.Int, ws []walletState) error {
	best := new(big.Int)
	for _, w := range ws {
		if w.Frozen {
			continue
		}
		v := w.Asset
		if asset.Native() {
			v = w.Native
		}
		if v != nil && v.Cmp(best) > 0 {
			best = v
		}
	}
	return txerr.New(txerr.InsufficientFunds, "hot_wallets_short",
		fmt.Errorf("%s %s asked; the best-funded hot wallet can spend %s (after what it has in flight and gas)", amount, asset.Symbol, best))
}

// hold keeps w (in status from: PENDING, or SIGNING when it was claimed) from being signed now, for
// kind, and asks for it again later; a withdrawal above max_withdrawal or past its funds_deadline fails.
func (s *Signer) hold(ctx context.Context, log *slog.Logger, w *store.Withdrawal, from store.Status, correlationID string, kind holdKind, cause error) error {
	cd := s.chains[w.Chain]
	switch kind {
	case holdFrozen:
		return s.holdFrozen(ctx, log, w, from, correlationID, cause)
	case holdTooBig:
		return s.failFrom(ctx, w, from, cause)
	case holdFunds:
		if err := pastDeadline(cd.Config, w.WaitingSince, cause); err != nil {
			log.Warn("withdrawal failed: no funds within the deadline", "err", err)
			return s.failFrom(ctx, w, from, err)
		}
	}
	delay := busyWait
	if from == store.Signing {
		reason := "back to pending: " + cause.Error()
		if kind == holdFunds {
			reason = awaitingReason(cause)
		}
		err := s.store.InTx(ctx, func(tx *sql.Tx) error {
			return s.store.Transition(ctx, tx, w.ID, store.Signing, store.Pending, truncate(reason, 500), store.ActorSigner, store.Change{})
		})
		if errors.Is(err, store.ErrConflict) {
			return nil // moved meanwhile; whoever moved it goes on from there
		}
		if err != nil {
			return err
		}
	}
	if kind == holdFunds {
		delay = fundsRecheck
		marked, err := s.store.NoteAwaitingFunds(ctx, []string{w.ID}, awaitingReason(cause), store.ActorSigner)
		if err != nil {
			return err
		}
		if len(marked) > 0 {
			s.m.AwaitingFunds(w.Chain, w.Asset)
			log.Warn("withdrawal awaits funds", "err", cause)
		}
	}
	body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), correlationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *sql.Tx) error {
		return s.queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{Delay: delay})
	})
}

// awaitClaimed gives claimed withdrawals (SIGNING) that turned out short of funds back to PENDING and
// marks them awaiting funds (the batcher's counterpart of hold; the next round looks at them again and
// applies the deadline).
func (s *Signer) awaitClaimed(ctx context.Context, log *slog.Logger, ws []*store.Withdrawal, cause error) {
	ctx = context.WithoutCancel(ctx)
	reason := truncate(awaitingReason(cause), 500)
	var ids []string
	for _, w := range ws {
		err := s.store.InTx(ctx, func(tx *sql.Tx) error {
			return s.store.Transition(ctx, tx, w.ID, store.Signing, store.Pending, reason, store.ActorSigner, store.Change{})
		})
		if err == nil {
			ids = append(ids, w.ID)
		} else if !errors.Is(err, store.ErrConflict) {
			log.Warn("release claimed withdrawal", "withdrawal_id", w.ID, "err", err)
		}
	}
	if len(ids) == 0 {
		return
	}
	if marked, err := s.store.NoteAwaitingFunds(ctx, ids, reason, store.ActorSigner); err != nil {
		log.Warn("note awaiting funds", "err", err)
	} else {
		for range marked {
			s.m.AwaitingFunds(ws[0].Chain, ws[0].Asset)
		}
	}
}
