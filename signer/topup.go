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

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
	"github.com/sluice-custody/sluice/multicall"
)

// Balance transfers (accountmgr queues them in balance_transfers and on balance-transfer):
//
//   - a top-up is paid by the chain's main account, whose key signs nothing else (txsend refuses it
//     any withdrawal). The PENDING top-ups of one asset go out together: one plain transfer when there
//     is one, else one Multicall3 aggregate3Value (native) or one batch-contract batchTransfer (token),
//     the same encodings as withdrawal batches.
//   - a sweep is paid by the hot wallet that holds the excess, back to the main account, alone.
//
// Exactly once: the rows are locked and checked PENDING inside the database transaction that records
// the signed transaction and moves them to SIGNED (txsend's Lock and Record), so a redelivered message,
// a second signer or a restart finds them SIGNED and signs nothing.
//
// Funds rule: the main account pays pending top-ups oldest first, each in full, as long as its balance
// (less the top-ups it signed that are not mined yet, and the gas) covers them; the first one it cannot
// cover, and every later one, waits PENDING until it can (accountmgr raises main_account_low meanwhile).
// No top-up is ever paid in part.

// mainAccounts lists the main account of every chain that has one, for txsend's refusal.
func mainAccounts(chains map[string]ChainDeps) map[string]common.Address {
	out := map[string]common.Address{}
	for name, cd := range chains {
		if !cd.Config.MainAccount.IsZero() {
			out[name] = cd.Config.MainAccount.Common()
		}
	}
	return out
}

// topUpRounds bounds how many top-up transactions one message signs (each takes up to maxItems rows).
const topUpRounds = 10

// HandleBalanceTransfer processes one balance-transfer message. One that keeps failing (a node down) is
// dropped on its last delivery rather than dead-lettered: its rows stay PENDING, and accountmgr asks
// for them again once they are a minute old.
func (s *Signer) HandleBalanceTransfer(ctx context.Context, m queue.Message) error {
	err := s.handleBalanceTransfer(ctx, m)
	var e *txerr.Error
	if err != nil && m.ReceiveCount >= queue.MaxReceiveCount && !(errors.As(err, &e) && !e.Type.Retryable()) {
		s.log.Warn("balance transfer keeps failing; dropped, accountmgr asks again", "err", err, "receives", m.ReceiveCount)
		return nil
	}
	return err
}

func (s *Signer) handleBalanceTransfer(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.BalanceTransferRequested](m.Body, queue.TypeBalanceTransfer)
	if err != nil {
		return err
	}
	bt, err := s.store.GetBalanceTransfer(ctx, p.TransferID)
	if errors.Is(err, store.ErrNotFound) {
		return txerr.New(txerr.InvalidTransaction, "unknown_balance_transfer", err)
	}
	if err != nil {
		return err
	}
	log := s.log.With("balance_transfer_id", bt.ID, "kind", bt.Kind, "chain", bt.Chain, "asset", bt.Asset,
		"correlation_id", env.CorrelationID, "message_id", env.ID)
	switch bt.Status {
	case store.TransferSigned:
		if m.ReceiveCount > 1 && bt.SentTxID != nil {
			// A redelivery after signing: the signed-tx message went with the record, but send the
			// recorded transaction on again in case it was lost since; never sign it again.
			return s.requeueSigned(ctx, *bt.SentTxID)
		}
		return nil // signed in a batch with an earlier top-up
	case store.TransferConfirmed, store.TransferFailed:
		return nil
	}
	cd, ok := s.chains[bt.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "balance transfer %s: chain %q is not configured", bt.ID, bt.Chain)
	}
	asset, ok := cd.Config.Asset(bt.Asset)
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "balance transfer %s: asset %q is not configured on %s", bt.ID, bt.Asset, bt.Chain)
	}
	if bt.Kind == store.TransferSweep {
		return s.signSweep(ctx, log, cd, asset, bt)
	}
	wait, err := s.signTopUps(ctx, log, cd, asset)
	if err != nil {
		return err
	}
	if wait > 0 {
		return s.transferLater(ctx, env, p, wait)
	}
	return nil
}

// transferLater asks again after d with a fresh message (waiting is not a failed delivery).
func (s *Signer) transferLater(ctx context.Context, env queue.Envelope, p queue.BalanceTransferRequested, d time.Duration) error {
	body, err := queue.NewEnvelope(ctx, queue.TypeBalanceTransfer, queue.NewID(), env.CorrelationID, p)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *sql.Tx) error {
		return s.queue.SendTx(ctx, tx, queue.BalanceTransfer, body, queue.SendOptions{Delay: max(d, time.Second)})
	})
}

// SignTopUps signs the chain's pending top-ups of asset from its main account (what a balance-transfer
// message triggers); it returns how long to wait before asking again when they are not ready yet (a
// gather window, an approve on its way, another signer holding the main account).
func (s *Signer) SignTopUps(ctx context.Context, chain, asset string) (time.Duration, error) {
	cd, ok := s.chains[chain]
	if !ok {
		return 0, fmt.Errorf("chain %q is not configured", chain)
	}
	a, ok := cd.Config.Asset(asset)
	if !ok {
		return 0, fmt.Errorf("asset %q is not configured on %s", asset, chain)
	}
	return s.signTopUps(ctx, s.log, cd, a)
}

func (s *Signer) signTopUps(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset) (time.Duration, error) {
	if cd.Config.MainAccount.IsZero() {
		return 0, txerr.Permanentf(txerr.InvalidTransaction, "chain %s has no main_account to top up from", cd.Config.Name)
	}
	main := cd.Config.MainAccount.Common()
	// The funds and allowance checks read state the top-ups signed meanwhile change: one signer at a
	// time signs from a main account; the others come back shortly (the owner drains every asset's rows
	// it is asked for, and the lock is freed with its connection if it dies).
	unlock, owner, err := s.store.TryLock(ctx, "topup/"+cd.Config.Name+"/"+main.Hex())
	if err != nil {
		return 0, err
	}
	if !owner {
		return time.Second, nil
	}
	defer unlock()
	limit := maxItems(cd.Config.Batching, asset.Native())
	gather := cd.Config.BlockTime.Duration
	for round := 0; round < topUpRounds && ctx.Err() == nil; round++ {
		rows, err := s.store.PendingTransfers(ctx, cd.Config.Name, store.TransferTopUp, main.Hex(), asset.Symbol, limit)
		if err != nil {
			return 0, err
		}
		if len(rows) == 0 {
			return 0, nil
		}
		// The checks of one round queue their top-ups within moments of each other: wait one block time
		// from the oldest so they go out as one transaction.
		if age := time.Since(rows[0].CreatedAt); age < gather && len(rows) < limit {
			return gather - age, nil
		}
		n, wait, err := s.topUpRound(ctx, log, cd, asset, main, rows)
		if err != nil || wait > 0 || n == 0 {
			return wait, err
		}
	}
	return 0, nil
}

// gasBound is the most gas n top-ups in one transaction can take by the gas model, for reserving the
// fee out of the main account's native balance before the call is built and estimated.
func gasBound(native bool, n int) uint64 {
	per := uint64(GasERC20SingleNew)
	if native {
		per = GasNativeBatchedNew
	}
	return 50_000 + uint64(n)*(per+per/4)
}

// topUpRound signs one transaction paying the leading rows the main account covers in full; n is how
// many it paid (0: it covers not even the oldest, which waits).
func (s *Signer) topUpRound(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, main common.Address,
	rows []*store.BalanceTransfer) (n int, wait time.Duration, err error) {
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	committed, err := s.unminedTopUps(ctx, cd, asset.Symbol, main)
	if err != nil {
		return 0, 0, err
	}
	bal, err := s.balanceOf(ctx, cd, asset, main)
	if err != nil {
		return 0, 0, err
	}
	avail := new(big.Int).Sub(bal, committed)
	sum := new(big.Int)
	k := 0
	for i, r := range rows {
		next := new(big.Int).Add(sum, r.Amount)
		need := new(big.Int).Set(next)
		if asset.Native() {
			need.Add(need, new(big.Int).Mul(new(big.Int).SetUint64(gasBound(true, i+1)), f.MaxFeePerGas))
		}
		if need.Cmp(avail) > 0 {
			break
		}
		sum, k = next, i+1
	}
	if k == 0 {
		log.Warn("main account cannot cover the oldest pending top-up; it waits", "main", main, "available", avail,
			"needs", rows[0].Amount, "pending", len(rows))
		return 0, 0, nil
	}
	rows = rows[:k]
	contract := cd.Config.BatchContract
	if asset.Native() {
		contract = cd.Config.Multicall3
	}
	if len(rows) < 2 || contract.IsZero() {
		rows = rows[:1]
		sum = new(big.Int).Set(rows[0].Amount)
	}
	var (
		to    common.Address
		value = new(big.Int)
		data  []byte
	)
	switch {
	case len(rows) == 1 && asset.Native():
		to, value = common.HexToAddress(rows[0].To), new(big.Int).Set(rows[0].Amount)
	case len(rows) == 1:
		to, data = asset.Address.Common(), erc20Transfer(common.HexToAddress(rows[0].To), rows[0].Amount)
	case asset.Native():
		var failed []int
		to = contract.Common()
		if data, value, failed, err = BuildNative(ctx, cd.Client, main, to, transfersOfRows(rows)); err != nil {
			return 0, 0, err
		}
		if len(failed) > 0 {
			return 0, 0, fmt.Errorf("top-up batch simulation: hot wallet item %d refused the coin", failed[0])
		}
	default:
		to = contract.Common()
		ready, err := s.topUpAllowance(ctx, log, cd, asset, main, new(big.Int).Add(sum, committed))
		if err != nil {
			return 0, 0, err
		}
		if !ready {
			return 0, cd.Config.BlockTime.Duration, nil
		}
		var failed []int
		if data, failed, err = BuildERC20(ctx, cd.Client, main, to, asset.Address.Common(), transfersOfRows(rows)); err != nil {
			return 0, 0, err
		}
		if len(failed) > 0 {
			return 0, 0, fmt.Errorf("top-up batch simulation: transfer %d to hot wallet %s fails", failed[0], rows[failed[0]].To)
		}
	}
	est, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: main, To: &to, Value: value, Data: data,
		GasFeeCap: f.MaxFeePerGas, GasTipCap: f.MaxPriorityFee})
	if err != nil {
		return 0, 0, fmt.Errorf("estimate top-up of %d: %w", len(rows), err)
	}
	gas := withGasMargin(est, data)
	if err := s.checkCoinFunds(ctx, cd, asset, main, value, gas, f.MaxFeePerGas); err != nil {
		if txerr.Classify(err) == txerr.InsufficientFunds {
			// Short of native coin for the gas: the top-ups wait PENDING for the main account like any
			// shortfall (never a dead letter, never in part).
			log.Warn("main account cannot pay the top-up's gas; it waits", "err", err)
			return 0, 0, nil
		}
		return 0, 0, err
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	st, err := s.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, Node: cd.Client, From: main, To: to, Value: value, Data: data,
		Gas: gas, Fees: f, Kind: store.TransferTopUp, Source: "signer", CorrelationID: "topup-" + rows[0].ID,
		LeaseHolder: "topup-" + rows[0].ID,
		Lock: func(ctx context.Context, dbtx *sql.Tx) error {
			return s.store.LockPendingTransfers(ctx, dbtx, ids)
		},
		Record: func(ctx context.Context, dbtx *sql.Tx, st *store.SentTx) error {
			reason := fmt.Sprintf("signed: tx %s nonce %d from %s, %d top-up(s) of %s", st.Hash, st.Nonce, main.Hex(), len(rows), asset.Symbol)
			return s.store.MarkTransfersSigned(ctx, dbtx, ids, st.ID, reason)
		},
	})
	if errors.Is(err, store.ErrConflict) {
		log.Info("top-ups signed by another worker meanwhile")
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	s.m.TransactionSigned(cd.Config.Name, store.TransferTopUp)
	log.Info("top-up signed", "size", len(rows), "amount", sum, "tx_hash", st.Hash, "nonce", st.Nonce, "sent_tx_id", st.ID)
	return len(rows), 0, nil
}

func transfersOfRows(rows []*store.BalanceTransfer) []multicall.Transfer {
	ts := make([]multicall.Transfer, len(rows))
	for i, r := range rows {
		ts[i] = multicall.Transfer{To: common.HexToAddress(r.To), Amount: r.Amount}
	}
	return ts
}

// unminedTopUps is what the main account signed in top-ups of asset that the chain has not mined yet:
// its balance does not show them, but they will take it.
func (s *Signer) unminedTopUps(ctx context.Context, cd ChainDeps, asset string, main common.Address) (*big.Int, error) {
	mined, err := cd.Client.NonceAt(ctx, main)
	if err != nil {
		return nil, fmt.Errorf("mined nonce of %s: %w", main, err)
	}
	book, err := s.store.Transfers(ctx, cd.Config.Name)
	if err != nil {
		return nil, err
	}
	sum := new(big.Int)
	for _, o := range book.Open {
		if o.Kind == store.TransferTopUp && o.Asset == asset && o.Nonce != nil && *o.Nonce >= mined &&
			common.HexToAddress(o.From) == main {
			sum.Add(sum, o.Amount)
		}
	}
	return sum, nil
}

func (s *Signer) balanceOf(ctx context.Context, cd ChainDeps, asset *config.Asset, who common.Address) (*big.Int, error) {
	if asset.Native() {
		b, err := cd.Client.BalanceAt(ctx, who)
		if err != nil {
			return nil, fmt.Errorf("balance of %s: %w", who, err)
		}
		return b, nil
	}
	b, err := cd.Client.TokenBalance(ctx, asset.Address.Common(), who)
	if err != nil {
		return nil, fmt.Errorf("%s balance of %s: %w", asset.Symbol, who, err)
	}
	return b, nil
}

// topUpAllowance makes sure the main account's allowance to the batch contract covers need (this batch
// and the top-ups in flight); when it does not, it signs one bounded approve (allowanceBatches times
// need, at most the balance) and reports not ready until that approve is mined. Never to Multicall3.
func (s *Signer) topUpAllowance(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, main common.Address, need *big.Int) (bool, error) {
	batch, token := cd.Config.BatchContract.Common(), asset.Address.Common()
	if batch == cd.Config.Multicall3.Common() {
		return false, txerr.Permanentf(txerr.InvalidTransaction, "batch_contract of %s is Multicall3: refusing to give it an allowance", cd.Config.Name)
	}
	mined, err := cd.Client.NonceAt(ctx, main)
	if err != nil {
		return false, fmt.Errorf("mined nonce of %s: %w", main, err)
	}
	open, err := s.store.UnminedSentTxOfKind(ctx, cd.Config.ChainID, main.Hex(), token.Hex(), "approve", mined)
	if err != nil || open {
		return false, err
	}
	out, err := cd.Client.CallContract(ctx, ethereum.CallMsg{From: main, To: &token, Data: erc20Allowance(main, batch)}, nil)
	if err != nil {
		return false, fmt.Errorf("allowance of %s to %s: %w", main, batch, err)
	}
	allowance, err := decodeAllowance(out)
	if err != nil {
		return false, err
	}
	if allowance.Cmp(need) >= 0 {
		return true, nil
	}
	bal, err := s.balanceOf(ctx, cd, asset, main)
	if err != nil {
		return false, err
	}
	amount := new(big.Int).Mul(need, big.NewInt(allowanceBatches))
	if amount.Cmp(bal) > 0 {
		amount = bal
	}
	if amount.Cmp(need) < 0 {
		amount = need // the funds check of the batch says what is missing
	}
	if err := s.approve(ctx, log, cd, main, token, batch, amount); err != nil {
		return false, err
	}
	return false, nil
}

// signSweep signs a sweep: the hot wallet's excess back to the main account, in one transfer.
func (s *Signer) signSweep(ctx context.Context, log *slog.Logger, cd ChainDeps, asset *config.Asset, bt *store.BalanceTransfer) error {
	from, main := common.HexToAddress(bt.From), cd.Config.MainAccount.Common()
	if cd.Config.MainAccount.IsZero() || common.HexToAddress(bt.To) != main || !cd.Config.IsHotWallet(config.Address(from)) {
		return txerr.Permanentf(txerr.InvalidTransaction, "sweep %s from %s to %s: only a hot wallet sweeps, and only to the main account %s",
			bt.ID, bt.From, bt.To, cd.Config.MainAccount)
	}
	f, err := cd.Fees.New(ctx, nil)
	if err != nil {
		return err
	}
	to, value, data := main, new(big.Int).Set(bt.Amount), []byte(nil)
	if !asset.Native() {
		to, value, data = asset.Address.Common(), new(big.Int), erc20Transfer(main, bt.Amount)
	}
	failSweep := func(cause error) error {
		log.Warn("sweep no longer possible; dropped", "err", cause)
		return s.store.FailPendingTransfer(ctx, bt.ID, "not signed: "+cause.Error())
	}
	if !asset.Native() {
		if err := s.checkTokenFunds(ctx, cd, asset, from, bt.Amount); err != nil {
			return failSweep(err) // withdrawals took the excess meanwhile
		}
	}
	est, err := cd.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &to, Value: value, Data: data,
		GasFeeCap: f.MaxFeePerGas, GasTipCap: f.MaxPriorityFee})
	if err != nil {
		return fmt.Errorf("estimate sweep %s: %w", bt.ID, err)
	}
	gas := withGasMargin(est, data)
	if err := s.checkCoinFunds(ctx, cd, asset, from, bt.Amount, gas, f.MaxFeePerGas); err != nil {
		if txerr.Classify(err) == txerr.InsufficientFunds {
			return failSweep(err)
		}
		return err
	}
	st, err := s.send.Send(ctx, txsend.Candidate{
		Chain: cd.Config.Name, ChainID: cd.Config.ChainID, Node: cd.Client, From: from, To: to, Value: value, Data: data,
		Gas: gas, Fees: f, Kind: store.TransferSweep, Source: "signer", CorrelationID: "sweep-" + bt.ID, LeaseHolder: "sweep-" + bt.ID,
		Lock: func(ctx context.Context, dbtx *sql.Tx) error {
			if err := s.store.LockPendingTransfers(ctx, dbtx, []string{bt.ID}); err != nil {
				return err
			}
			return s.checkFrozen(ctx, dbtx, cd.Config.Name, from.Hex())
		},
		Record: func(ctx context.Context, dbtx *sql.Tx, st *store.SentTx) error {
			return s.store.MarkTransfersSigned(ctx, dbtx, []string{bt.ID}, st.ID,
				fmt.Sprintf("signed: tx %s nonce %d from %s", st.Hash, st.Nonce, from.Hex()))
		},
	})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if errors.Is(err, errWalletFrozen) {
		return failSweep(err)
	}
	if err != nil {
		return err
	}
	s.m.TransactionSigned(cd.Config.Name, store.TransferSweep)
	log.Info("sweep signed", "amount", bt.Amount, "tx_hash", st.Hash, "nonce", st.Nonce, "sent_tx_id", st.ID)
	return nil
}
