// Package signer owns turning a pending withdrawal into a signed transaction: it picks the hot wallet,
// fees and nonce, signs, and records the signed transaction together with the withdrawal's move to
// SIGNED and the signed-tx message, in one database transaction, before anything leaves the process.
package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Chain is what the signer asks of a node.
type Chain interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	BalanceAt(ctx context.Context, account common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
}

// Keys hands out signers; the keys themselves never leave it.
type Keys interface {
	Signer(ctx context.Context, addr common.Address) (keys.Signer, error)
}

// Nonces allocates nonce leases: Commit one once the tx using it is persisted, Release it if nothing was.
type Nonces interface {
	// AllocateFor returns holder's earlier uncommitted lease when there is one, so a retry after a
	// crash reuses its nonce instead of leaving a hole.
	AllocateFor(ctx context.Context, chainID uint64, addr common.Address, f nonce.Floors, holder string) (nonce.Lease, error)
}

// ChainDeps is one configured chain and its node client.
type ChainDeps struct {
	Config config.Chain
	Client Chain
}

// Signer consumes tx-request.
type Signer struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Nonces Nonces
	Chains map[string]ChainDeps
	Log    *slog.Logger
	// Metrics may be nil (TEMP: core's branch makes it a constructor argument).
	Metrics Metrics

	batcher batcherState
}

// gasMargin is the extra gas limit over an estimate, in percent: estimates can move with state
// between estimation and inclusion (a token balance slot that becomes non-zero, say).
const gasMargin = 20

// maxNonceRetries bounds how often signing re-allocates after finding its nonce already recorded.
const maxNonceRetries = 5

// Handle processes one tx-request message.
func (s *Signer) Handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.WithdrawalRequested](m.Body, queue.TypeWithdrawalRequested)
	if err != nil {
		return err
	}
	log := s.Log.With("withdrawal_id", p.WithdrawalID, "correlation_id", env.CorrelationID, "message_id", env.ID)
	w, err := s.Store.GetWithdrawal(ctx, p.WithdrawalID)
	if errors.Is(err, store.ErrNotFound) {
		return txerr.New(txerr.InvalidTransaction, "unknown_withdrawal", fmt.Errorf("withdrawal %s: %w", p.WithdrawalID, err))
	}
	if err != nil {
		return err
	}
	switch w.Status {
	case store.Signed, store.Broadcasted:
		// Redelivered after signing: send the recorded tx on again; never sign it into a second nonce.
		log.Info("already signed, re-queueing the recorded transaction", "sent_tx_id", *w.SentTxID)
		return s.requeueSigned(ctx, *w.SentTxID, env.CorrelationID)
	case store.Confirmed, store.Failed, store.Canceled:
		log.Info("nothing to do", "status", w.Status)
		return nil
	case store.Pending:
		if s.batchingActive(w.Chain) {
			log.Debug("left to the batcher")
			return nil // the batcher claims it from the database
		}
		if err := s.Store.InTx(ctx, func(tx *sql.Tx) error {
			return s.Store.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "picked up by signer", "signer", store.Change{})
		}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // canceled or taken by another signer meanwhile; the history says which
			}
			return err
		}
	case store.Signing:
		if s.batchingActive(w.Chain) {
			return nil // claimed by the batcher, which also takes over claims whose signer died
		}
		// A signer died between claiming and recording (nothing was persisted then), or another is
		// signing right now; carry on: only one can win the SIGNING → SIGNED transition.
	}
	err = s.sign(ctx, log, w, env)
	if err == nil {
		return nil
	}
	if t := txerr.Classify(err); !t.Retryable() && isClassified(err) {
		return s.fail(ctx, w, err)
	}
	if m.ReceiveCount >= queue.MaxReceiveCount {
		// Nothing was recorded for it, so rather than strand it in SIGNING on a DLQ through a node
		// outage or a fee spike, it goes back to PENDING and is asked for again later.
		log.Warn("signing keeps failing; retrying later", "err", err, "receives", m.ReceiveCount)
		return s.retryLater(ctx, w, env, err)
	}
	return err
}

// retryLaterDelay is how long a withdrawal that used up its deliveries waits before it is tried again.
const retryLaterDelay = time.Minute

// retryLater moves w back to PENDING with the reason and queues a fresh, delayed request for it, in one
// transaction.
func (s *Signer) retryLater(ctx context.Context, w *store.Withdrawal, env queue.Envelope, cause error) error {
	body, err := queue.NewEnvelope(queue.TypeWithdrawalRequested, queue.NewID(), env.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(tx *sql.Tx) error {
		err := s.Store.Transition(ctx, tx, w.ID, store.Signing, store.Pending,
			fmt.Sprintf("retrying in %s after %d failed attempts: %v", retryLaterDelay, queue.MaxReceiveCount, cause), "signer", store.Change{})
		if errors.Is(err, store.ErrConflict) {
			return nil // signed or moved meanwhile
		}
		if err != nil {
			return err
		}
		return s.Queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{Delay: retryLaterDelay})
	})
}

func isClassified(err error) bool {
	var e *txerr.Error
	return errors.As(err, &e)
}

func (s *Signer) sign(ctx context.Context, log *slog.Logger, w *store.Withdrawal, env queue.Envelope) error {
	cd, ok := s.Chains[w.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q is not configured", w.Chain)
	}
	asset, ok := cd.Config.Asset(w.Asset)
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "asset %q is not configured on %s", w.Asset, w.Chain)
	}
	if len(cd.Config.HotWallets) == 0 {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %s has no hot wallet", w.Chain)
	}
	from := cd.Config.HotWallets[0].Common()
	to := common.HexToAddress(w.To)
	chainID := new(big.Int).SetUint64(cd.Config.ChainID)

	txTo, value, data := to, w.Amount, []byte(nil)
	if !asset.Native() {
		txTo, value, data = asset.Address.Common(), new(big.Int), erc20Transfer(to, w.Amount)
	}
	head, err := cd.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("head of %s: %w", w.Chain, err)
	}
	if head.BaseFee == nil {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %s has no EIP-1559 base fee", w.Chain)
	}
	suggested, err := cd.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return fmt.Errorf("tip on %s: %w", w.Chain, err)
	}
	fees, err := PickFees(cd.Config.Fees, head.BaseFee, suggested)
	if err != nil {
		return err
	}
	if !asset.Native() { // before estimating: a transfer beyond the balance would read as a revert
		if err := s.checkTokenFunds(ctx, cd, asset, from, w.Amount); err != nil {
			return err
		}
	}
	// Estimating also runs the transfer against current state, so a reverting token transfer
	// (blocked recipient, say) fails here, before a nonce is spent on it.
	gas, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &txTo, Value: value, Data: data,
		GasFeeCap: fees.MaxFeePerGas, GasTipCap: fees.MaxPriorityFee})
	if err != nil {
		return fmt.Errorf("estimate gas for withdrawal %s: %w", w.ID, err)
	}
	if data != nil {
		gas += gas * gasMargin / 100
	}
	if err := s.checkCoinFunds(ctx, cd, asset, from, w.Amount, gas, fees.MaxFeePerGas); err != nil {
		return err
	}
	signer, err := s.Keys.Signer(ctx, from)
	if err != nil {
		return fmt.Errorf("signer for %s: %w", from, err)
	}

	for attempt := 0; ; attempt++ {
		done, err := s.signWithNonce(ctx, log, w, env, cd, signer, chainID, from, txTo, value, data, gas, fees)
		if done || err != nil {
			return err
		}
		if attempt >= maxNonceRetries {
			return txerr.New(txerr.NonceTooLow, "nonce_retries", fmt.Errorf("withdrawal %s: every allocated nonce was already recorded", w.ID))
		}
	}
}

// nonceFloors is what a new nonce of from must not go below: the chain's mined count, and the next nonce
// after both the node's pending pool and our own recorded transactions.
func (s *Signer) nonceFloors(ctx context.Context, cd ChainDeps, from common.Address) (nonce.Floors, error) {
	mined, err := cd.Client.NonceAt(ctx, from)
	if err != nil {
		return nonce.Floors{}, fmt.Errorf("mined nonce of %s: %w", from, err)
	}
	pending, err := cd.Client.PendingNonceAt(ctx, from)
	if err != nil {
		return nonce.Floors{}, fmt.Errorf("pending nonce of %s: %w", from, err)
	}
	recorded, err := s.Store.NextNonce(ctx, cd.Config.ChainID, from.Hex())
	if err != nil {
		return nonce.Floors{}, err
	}
	return nonce.Floors{Mined: mined, Next: max(pending, recorded)}, nil
}

// signWithNonce allocates a nonce, signs and records. done=false means the nonce turned out to be
// recorded already (a lease reclaimed after its holder was slow, not dead) and signing must retry.
func (s *Signer) signWithNonce(ctx context.Context, log *slog.Logger, w *store.Withdrawal, env queue.Envelope, cd ChainDeps,
	signer keys.Signer, chainID *big.Int, from, txTo common.Address, value *big.Int, data []byte, gas uint64, fees Fees) (bool, error) {
	floors, err := s.nonceFloors(ctx, cd, from)
	if err != nil {
		return false, err
	}
	var (
		lease     *nonce.Lease
		st        *store.SentTx
		persisted = false
	)
	defer func() {
		if lease != nil && !persisted {
			if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
				log.Warn("release nonce lease", "nonce", lease.Nonce, "err", err)
			}
		}
	}()
	err = s.Store.InTx(ctx, func(dbtx *sql.Tx) error {
		// Deliveries of one withdrawal racing each other queue up on its row here, so only one of them
		// allocates a nonce and signs; the others find it SIGNED and stop without taking a nonce.
		cur, err := s.Store.LockWithdrawal(ctx, dbtx, w.ID)
		if err != nil {
			return err
		}
		if cur.Status != store.Signing {
			return fmt.Errorf("withdrawal %s is %s: %w", w.ID, cur.Status, store.ErrConflict)
		}
		if lease == nil { // kept across a deadlock retry of this transaction
			l, err := s.Nonces.AllocateFor(ctx, cd.Config.ChainID, from, floors, w.ID)
			if err != nil {
				return fmt.Errorf("allocate nonce for %s: %w", from, err)
			}
			lease = &l
		}
		tx, err := signer.SignTx(ctx, types.NewTx(&types.DynamicFeeTx{
			ChainID: chainID, Nonce: lease.Nonce, GasTipCap: fees.MaxPriorityFee, GasFeeCap: fees.MaxFeePerGas,
			Gas: gas, To: &txTo, Value: value, Data: data,
		}), chainID)
		if err != nil {
			return fmt.Errorf("sign withdrawal %s: %w", w.ID, err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode tx %s: %w", tx.Hash(), err)
		}
		st = &store.SentTx{
			Chain: w.Chain, ChainID: cd.Config.ChainID, From: from.Hex(), Nonce: tx.Nonce(), To: txTo.Hex(),
			Hash: tx.Hash().Hex(), Raw: raw, GasLimit: gas, MaxFeePerGas: fees.MaxFeePerGas, MaxPriorityFee: fees.MaxPriorityFee,
			Kind: "withdrawal", Source: "signer", RequestID: env.ID, CorrelationID: w.CorrelationID,
		}
		id, err := s.Store.InsertSentTx(ctx, dbtx, st)
		if err != nil {
			return err
		}
		fromHex := from.Hex()
		reason := fmt.Sprintf("signed tx %s nonce %d from %s", st.Hash, st.Nonce, fromHex)
		if err := s.Store.Transition(ctx, dbtx, w.ID, store.Signing, store.Signed, reason, "signer",
			store.Change{From: &fromHex, SentTxID: &id}); err != nil {
			return err
		}
		return s.sendSigned(ctx, dbtx, st, env.CorrelationID)
	})
	switch {
	case err == nil:
		persisted = true
		if err := lease.Commit(ctx); err != nil {
			// The row is persisted: a reclaim of this lease fails on the unique nonce and is committed then.
			log.Warn("commit nonce lease", "nonce", st.Nonce, "err", err)
		}
		s.countSigned(w.Chain, w.Asset, 1)
		log.Info("signed", "tx_hash", st.Hash, "from", st.From, "nonce", st.Nonce, "sent_tx_id", st.ID)
		return true, nil
	case store.IsDuplicate(err) && strings.Contains(err.Error(), "uq_sent_tx_nonce"):
		persisted = true // the nonce is used by a recorded tx: it must not be handed out again
		_ = lease.Commit(ctx)
		log.Warn("allocated nonce already recorded; allocating again", "nonce", st.Nonce)
		return false, nil
	case errors.Is(err, store.ErrConflict):
		log.Info("withdrawal moved by another worker while signing; nothing signed here")
		return true, nil
	}
	return false, err
}

// checkCoinFunds makes sure the hot wallet can pay the gas, and the amount when it is the native coin.
func (s *Signer) checkCoinFunds(ctx context.Context, cd ChainDeps, asset *config.Asset, from common.Address, amount *big.Int, gas uint64, maxFee *big.Int) error {
	need := new(big.Int).Mul(new(big.Int).SetUint64(gas), maxFee)
	if asset.Native() {
		need.Add(need, amount)
	}
	coin, err := cd.Client.BalanceAt(ctx, from)
	if err != nil {
		return fmt.Errorf("balance of %s: %w", from, err)
	}
	if coin.Cmp(need) < 0 {
		return txerr.New(txerr.InsufficientFunds, "hot_wallet_balance",
			fmt.Errorf("hot wallet %s holds %s wei on %s, needs %s", from, coin, cd.Config.Name, need))
	}
	return nil
}

func (s *Signer) checkTokenFunds(ctx context.Context, cd ChainDeps, asset *config.Asset, from common.Address, amount *big.Int) error {
	bal, err := cd.Client.TokenBalance(ctx, asset.Address.Common(), from)
	if err != nil {
		return fmt.Errorf("%s balance of %s: %w", asset.Symbol, from, err)
	}
	if bal.Cmp(amount) < 0 {
		return txerr.New(txerr.InsufficientFunds, "hot_wallet_token_balance",
			fmt.Errorf("hot wallet %s holds %s base units of %s, needs %s", from, bal, asset.Symbol, amount))
	}
	return nil
}

// fail moves a withdrawal that cannot be paid to FAILED with the reason. Only withdrawals without a
// recorded transaction get here: signing errors happen before anything is persisted.
func (s *Signer) fail(ctx context.Context, w *store.Withdrawal, cause error) error {
	typ, msg := string(txerr.Classify(cause)), cause.Error()
	return s.Store.InTx(ctx, func(tx *sql.Tx) error {
		err := s.Store.Transition(ctx, tx, w.ID, store.Signing, store.Failed, msg, "signer",
			store.Change{ErrorType: &typ, ErrorMessage: &msg})
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	})
}

func (s *Signer) sendSigned(ctx context.Context, tx *sql.Tx, st *store.SentTx, correlationID string) error {
	body, err := queue.NewEnvelope(queue.TypeTxSigned, queue.NewID(), correlationID, queue.TxSigned{
		SentTxID: st.ID, Chain: st.Chain, From: st.From, Nonce: st.Nonce, Hash: st.Hash,
	})
	if err != nil {
		return err
	}
	return s.Queue.SendTx(ctx, tx, queue.SignedTx, body, queue.SendOptions{GroupID: st.Chain + ":" + st.From})
}

func (s *Signer) requeueSigned(ctx context.Context, sentTxID int64, correlationID string) error {
	st, err := s.Store.GetSentTx(ctx, sentTxID)
	if err != nil {
		return err
	}
	if st.Status != store.TxSigned {
		return nil // already broadcast: the monitor follows it
	}
	return s.Store.InTx(ctx, func(tx *sql.Tx) error { return s.sendSigned(ctx, tx, st, correlationID) })
}

// erc20Transfer encodes transfer(to, amount).
func erc20Transfer(to common.Address, amount *big.Int) []byte {
	data := make([]byte, 4+32+32)
	copy(data, []byte{0xa9, 0x05, 0x9c, 0xbb})
	copy(data[4+12:], to.Bytes())
	amount.FillBytes(data[4+32:])
	return data
}
