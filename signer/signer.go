// Package signer owns turning a pending withdrawal into a signed transaction: it picks the hot wallet,
// fees and nonce, signs, and records the signed transaction together with the withdrawal's move to
// SIGNED and the signed-tx message, in one database transaction, before anything leaves the process. It
// also signs again, at the same nonce with higher fees, a recorded transaction a node refused as
// underpriced (the broadcaster, which holds no keys, asks for it).
//
// Invariants:
//   - a withdrawal is signed at most once: only one worker wins its SIGNING → SIGNED move, which commits
//     with the sent transaction (unique per wallet and nonce) and the signed-tx message;
//   - a chain's hot wallets form a fleet; one place (wallets.go) gives each batch or single transfer to a
//     wallet whose balance, less what it has in flight, funds it and its gas; each wallet has its own
//     nonce stream (Redis, keyed by chain and address) and its own signed-tx ordering group, so nonces
//     are never shared between wallets, never skipped and never used twice;
//   - a frozen wallet is never signed with (checked again in the recording transaction);
//   - a withdrawal no wallet can fund is never failed for it at once: it waits PENDING awaiting_funds
//     (funds.go) and fails with INSUFFICIENT_FUNDS only past its chain's funds_deadline or above the
//     asset's max_withdrawal;
//   - the batch contract's allowance is bounded (never unlimited) and never given to Multicall3.
package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// Chain is what the signer asks of a node. CallContract is needed by batching (simulation, allowance).
type Chain interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	BalanceAt(ctx context.Context, account common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
}

// Keys hands out signers; the keys themselves never leave it.
type Keys = txsend.Keys

// Nonces allocates nonce leases (see txsend.Nonces).
type Nonces = txsend.Nonces

// ChainDeps is one configured chain, its node client and its fee estimator (built from the chain's
// fees config when left nil).
type ChainDeps = chain.Deps[Chain]

// Deps are the collaborators a Signer cannot work without.
type Deps struct {
	Store  *store.Store
	Queue  queue.TxSender
	Keys   Keys
	Nonces Nonces
	Chains map[string]ChainDeps
	// Tracer, when set, traces the batcher's work under the traces of the withdrawals it claims (their
	// Traceparent); the consumer's work is traced by the consumer. Optional.
	Tracer trace.Tracer
}

// Signer consumes tx-request.
type Signer struct {
	store  *store.Store
	queue  queue.TxSender
	chains map[string]ChainDeps
	send   *txsend.Sender
	log    *slog.Logger
	m      Metrics
	tracer trace.Tracer // nil: the batcher's work is not traced

	batcher batcherState
}

// New checks d (a missing dependency is an error naming it) and builds the signer. A nil log discards;
// m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Signer, error) {
	if d.Nonces == nil {
		return nil, errors.New("signer: no nonce allocator")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	// The sender checks the store, queue and keys it shares with the signer; it refuses the main
	// accounts anything but top-ups (topup.go).
	send, err := txsend.New(txsend.Deps{Store: d.Store, Queue: d.Queue, Keys: d.Keys, Nonces: d.Nonces,
		MainAccounts: mainAccounts(d.Chains)}, log)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	chains, err := chain.AllWithFees(d.Chains)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &Signer{store: d.Store, queue: d.Queue, chains: chains, send: send, log: log, m: m, tracer: d.Tracer}, nil
}

// gasMargin is the extra gas limit over an estimate, in percent: estimates can move with state
// between estimation and inclusion (a token balance slot that becomes non-zero, say).
const gasMargin = 20

// Handle processes one tx-request message: a withdrawal to sign, or a recorded transaction to sign again
// with higher fees.
func (s *Signer) Handle(ctx context.Context, m queue.Message) error {
	if env, err := queue.ParseEnvelope(m.Body, ""); err == nil && env.Type == queue.TypeTxRefeeRequested {
		return s.handleRefee(ctx, m)
	}
	env, p, err := queue.Decode[queue.WithdrawalRequested](m.Body, queue.TypeWithdrawalRequested)
	if err != nil {
		return err
	}
	log := s.log.With("withdrawal_id", p.WithdrawalID, "correlation_id", env.CorrelationID, "message_id", env.ID)
	w, err := s.store.GetWithdrawal(ctx, p.WithdrawalID)
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
		return s.requeueSigned(ctx, *w.SentTxID)
	case store.Confirmed, store.Failed, store.Canceled:
		log.Info("nothing to do", "status", w.Status)
		return nil
	case store.Pending:
		if s.batchingActive(w.Chain) {
			log.Debug("left to the batcher")
			return nil // the batcher claims it from the database
		}
	case store.Signing:
		if s.batchingActive(w.Chain) {
			return nil // claimed by the batcher, which also takes over claims whose signer died
		}
		// A signer died between claiming and recording (nothing was persisted then), or another is
		// signing right now; carry on: only one can win the SIGNING → SIGNED transition.
	}
	// The wallet is chosen before the claim, so a withdrawal that waits (for funds, for a frozen wallet)
	// waits PENDING without a claim and a release in its history every time it is looked at again.
	from, hold, cause, err := s.chooseOne(ctx, w)
	if err != nil {
		if m.ReceiveCount >= queue.MaxReceiveCount {
			log.Warn("hot wallets keep failing to answer; retrying later", "err", err, "receives", m.ReceiveCount)
			return s.retryLater(ctx, w, env, err)
		}
		return err
	}
	if hold != holdNone {
		return s.hold(ctx, log, w, w.Status, env.CorrelationID, hold, cause)
	}
	if w.Status == store.Pending {
		if err := s.store.InTx(ctx, func(tx *sql.Tx) error {
			return s.store.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "picked up by signer", store.ActorSigner, store.Change{})
		}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil // canceled or taken by another signer meanwhile; the history says which
			}
			return err
		}
	}
	err = s.sign(ctx, log, w, from, env.ID)
	if err == nil {
		return nil
	}
	if errors.Is(err, errWalletFrozen) { // frozen between the choice and the signature
		return s.holdFrozen(ctx, log, w, store.Signing, env.CorrelationID, err)
	}
	if txerr.Classify(err) == txerr.InsufficientFunds {
		// The balance moved between the choice and the signature (another signer spent it, say).
		return s.hold(ctx, log, w, store.Signing, env.CorrelationID, holdFunds, err)
	}
	if permanent(err) {
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

// permanent reports whether err fails a withdrawal at once: classified and not retryable. Short funds
// are neither: the withdrawal waits for a top-up (awaiting_funds) until the chain's funds_deadline.
func permanent(err error) bool {
	t := txerr.Classify(err)
	return !t.Retryable() && t != txerr.InsufficientFunds && isClassified(err)
}

// retryLaterDelay is how long a withdrawal that used up its deliveries waits before it is tried again.
const retryLaterDelay = time.Minute

// retryLater moves w back to PENDING (when it was claimed) with the reason and queues a fresh, delayed
// request for it, in one transaction.
func (s *Signer) retryLater(ctx context.Context, w *store.Withdrawal, env queue.Envelope, cause error) error {
	body, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, queue.NewID(), env.CorrelationID, queue.WithdrawalRequested{WithdrawalID: w.ID})
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("retrying in %s after %d failed attempts: %v", retryLaterDelay, queue.MaxReceiveCount, cause)
	return s.store.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.store.LockWithdrawal(ctx, tx, w.ID)
		if err != nil {
			return err
		}
		switch cur.Status {
		case store.Signing:
			if err := s.store.Transition(ctx, tx, w.ID, store.Signing, store.Pending, reason, store.ActorSigner, store.Change{}); err != nil {
				return err
			}
		case store.Pending:
			if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawal_history (withdrawal_id, from_status, to_status, reason, actor)
				VALUES (?,?,?,?,?)`, w.ID, store.Pending, store.Pending, truncate(reason, 500), store.ActorSigner); err != nil {
				return fmt.Errorf("history of %s: %w", w.ID, err)
			}
		default:
			return nil // signed or moved meanwhile
		}
		return s.queue.SendTx(ctx, tx, queue.TxRequest, body, queue.SendOptions{Delay: retryLaterDelay})
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isClassified(err error) bool {
	var e *txerr.Error
	return errors.As(err, &e)
}

// transfer is the call that pays a withdrawal from a hot wallet, before gas and fees are known.
type transfer struct {
	from, to common.Address
	value    *big.Int
	data     []byte
	asset    *config.Asset
}

// transferOf builds the call paying w on chain c: a plain transfer of the native coin, or the token's
// transfer(to, amount). A withdrawal the configuration cannot pay is a permanent error.
func transferOf(c config.Chain, w *store.Withdrawal, from common.Address) (transfer, error) {
	asset, ok := c.Asset(w.Asset)
	if !ok {
		return transfer{}, txerr.Permanentf(txerr.InvalidTransaction, "asset %q is not configured on %s", w.Asset, w.Chain)
	}
	if len(c.HotWallets) == 0 || from == (common.Address{}) {
		return transfer{}, txerr.Permanentf(txerr.InvalidTransaction, "chain %s has no hot wallet", w.Chain)
	}
	t := transfer{from: from, to: common.HexToAddress(w.To), value: w.Amount, asset: asset}
	if !asset.Native() {
		t.to, t.value, t.data = asset.Address.Common(), new(big.Int), erc20Transfer(common.HexToAddress(w.To), w.Amount)
	}
	return t, nil
}

// withGasMargin adds gasMargin to an estimate for contract calls; a plain transfer's gas is exact.
func withGasMargin(est uint64, data []byte) uint64 {
	if len(data) == 0 {
		return est
	}
	return est + est*gasMargin/100
}

// sign signs w (SIGNING) as a transfer of its own from hot wallet from.
func (s *Signer) sign(ctx context.Context, log *slog.Logger, w *store.Withdrawal, from common.Address, requestID string) error {
	cd, ok := s.chains[w.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q is not configured", w.Chain)
	}
	t, err := transferOf(cd.Config, w, from)
	if err != nil {
		return err
	}
	fees, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return err
	}
	if !t.asset.Native() { // before estimating: a transfer beyond the balance would read as a revert
		if err := s.checkTokenFunds(ctx, cd, t.asset, t.from, w.Amount); err != nil {
			return err
		}
	}
	// Estimating also runs the transfer against current state, so a reverting token transfer
	// (blocked recipient, say) fails here, before a nonce is spent on it.
	est, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: t.from, To: &t.to, Value: t.value, Data: t.data,
		GasFeeCap: fees.MaxFeePerGas, GasTipCap: fees.MaxPriorityFee})
	if err != nil {
		return fmt.Errorf("estimate gas for withdrawal %s: %w", w.ID, err)
	}
	gas := withGasMargin(est, t.data)
	if err := s.checkCoinFunds(ctx, cd, t.asset, t.from, w.Amount, gas, fees.MaxFeePerGas); err != nil {
		return err
	}
	fromHex := t.from.Hex()
	st, err := s.send.Send(ctx, txsend.Candidate{
		Chain: w.Chain, ChainID: cd.Config.ChainID, Node: cd.Client, From: t.from, To: t.to, Value: t.value, Data: t.data,
		Gas: gas, Fees: fees, Kind: "withdrawal", Source: "signer", RequestID: requestID, CorrelationID: w.CorrelationID,
		LeaseHolder: w.ID,
		// Deliveries of one withdrawal racing each other queue up on its row here, so only one of them
		// leases a nonce and signs; the others find it SIGNED and stop without taking a nonce.
		Lock: func(ctx context.Context, dbtx *sql.Tx) error {
			cur, err := s.store.LockWithdrawal(ctx, dbtx, w.ID)
			if err != nil {
				return err
			}
			if cur.Status != store.Signing {
				return fmt.Errorf("withdrawal %s is %s: %w", w.ID, cur.Status, store.ErrConflict)
			}
			return s.checkFrozen(ctx, dbtx, w.Chain, fromHex)
		},
		Record: func(ctx context.Context, dbtx *sql.Tx, st *store.SentTx) error {
			reason := fmt.Sprintf("signed tx %s nonce %d from %s", st.Hash, st.Nonce, fromHex)
			return s.store.Transition(ctx, dbtx, w.ID, store.Signing, store.Signed, reason, store.ActorSigner,
				store.Change{From: &fromHex, SentTxID: &st.ID})
		},
	})
	if errors.Is(err, store.ErrConflict) {
		log.Info("withdrawal moved by another worker while signing; nothing signed here")
		return nil
	}
	if err != nil {
		return err
	}
	s.m.TransactionSigned(w.Chain, "withdrawal")
	s.m.WithdrawalSigned(w.Chain, w.Asset, time.Since(w.CreatedAt))
	log.Info("signed", "tx_hash", st.Hash, "from", st.From, "nonce", st.Nonce, "sent_tx_id", st.ID)
	return nil
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
	return s.failFrom(ctx, w, store.Signing, cause)
}

// failFrom is fail for a withdrawal in status from (SIGNING, or PENDING when it never was claimed).
func (s *Signer) failFrom(ctx context.Context, w *store.Withdrawal, from store.Status, cause error) error {
	typ, msg := string(txerr.Classify(cause)), cause.Error()
	err := s.store.InTx(ctx, func(tx *sql.Tx) error {
		return s.store.Transition(ctx, tx, w.ID, from, store.Failed, msg, store.ActorSigner,
			store.Change{ErrorType: &typ, ErrorMessage: &msg})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err == nil {
		s.m.WithdrawalFailed(w.Chain, w.Asset, typ)
	}
	return err
}

func (s *Signer) requeueSigned(ctx context.Context, sentTxID int64) error {
	st, err := s.store.GetSentTx(ctx, sentTxID)
	if err != nil {
		return err
	}
	if st.Status != store.TxSigned {
		return nil // already broadcast: the monitor follows it
	}
	return s.store.InTx(ctx, func(tx *sql.Tx) error { return txsend.QueueSigned(ctx, s.queue, tx, st) })
}
