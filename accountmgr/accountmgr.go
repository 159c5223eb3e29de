package accountmgr

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Chain is what the account manager asks of a node.
type Chain interface {
	BalanceAt(ctx context.Context, account common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
	NonceAt(ctx context.Context, account common.Address) (uint64, error)
}

// ChainDeps is one configured chain and its node client (the account manager signs nothing: no fees).
type ChainDeps = chain.Deps[Chain]

// AlertMainAccountLow is the alert kind of a main account that cannot cover the hot wallets' deficits.
const AlertMainAccountLow = "main_account_low"

// Deps are the collaborators a Manager cannot work without.
type Deps struct {
	Store *store.Store
	// Queue sends balance-check messages and delayed retries.
	Queue queue.Queue
	// Sender queues a balance-transfer message in the database transaction that inserts its row.
	Sender queue.TxSender
	Alerts alert.Notifier
	Chains map[string]ChainDeps
	// Interval is the pause between two rounds of balance checks (accountmgr.interval).
	Interval time.Duration
	// StaleAfter is how long a transfer may stay PENDING before a round asks the signer for it again
	// (its message lost, dead-lettered, or its top-up waiting for the main account). Default 1 minute.
	StaleAfter time.Duration
}

// Manager runs `sluice accountmgr`.
type Manager struct {
	d   Deps
	log *slog.Logger
	m   Metrics
}

// New checks d (a missing dependency is an error naming it) and builds the manager. A nil log discards;
// m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Manager, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("accountmgr: Store is required")
	case d.Queue == nil:
		return nil, errors.New("accountmgr: Queue is required")
	case d.Sender == nil:
		return nil, errors.New("accountmgr: Sender is required")
	case d.Alerts == nil:
		return nil, errors.New("accountmgr: Alerts is required (alert.Nop{} for none)")
	}
	for name, cd := range d.Chains {
		if cd.Client == nil {
			return nil, fmt.Errorf("accountmgr: Chains[%q] has no client", name)
		}
	}
	if d.Interval <= 0 {
		d.Interval = 30 * time.Second
	}
	if d.StaleAfter <= 0 {
		d.StaleAfter = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	return &Manager{d: d, log: log, m: m}, nil
}

// managed reports whether a chain has anything to manage: a main account and an asset with a band.
func managed(c config.Chain) bool {
	return !c.MainAccount.IsZero() && len(c.HotWallets) > 0 && len(c.ManagedAssets()) > 0
}

// Run checks every managed account each Interval until ctx ends.
func (a *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(a.d.Interval)
	defer t.Stop()
	for {
		if err := a.CheckOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("balance check round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CheckOnce runs one round on every chain: reads every managed wallet's and the main account's
// balances (gauges), raises or resolves main_account_low from what the main account lacks, queues a
// balance-check per hot wallet (most urgent first), and asks again for transfers PENDING too long.
func (a *Manager) CheckOnce(ctx context.Context) error {
	var errs []error
	for name, cd := range a.d.Chains {
		if !managed(cd.Config) {
			continue
		}
		// One instance runs a chain's round at a time; the others skip it (the checks are idempotent
		// anyway, this only saves the duplicate work).
		unlock, owner, err := a.d.Store.TryLock(ctx, "accountmgr/round/"+name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !owner {
			continue
		}
		err = a.round(ctx, cd)
		unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Manager) round(ctx context.Context, cd ChainDeps) error {
	c := cd.Config
	as, err := a.assess(ctx, cd, c.HotWallets)
	if err != nil {
		return err
	}
	for _, asset := range c.ManagedAssets() {
		a.m.Balance(c.Name, c.MainAccount.Hex(), asset.Symbol, as.main[asset.Symbol].balance)
		var deficits []*big.Int
		for _, w := range as.wallets {
			p := w.assets[asset.Symbol]
			a.m.Balance(c.Name, w.addr.Hex(), asset.Symbol, p.pos.Balance)
			if p.topUp != nil {
				deficits = append(deficits, p.topUp)
			}
		}
		a.alertMain(ctx, c, asset.Symbol, as.main[asset.Symbol], deficits)
	}
	// Most urgent first: when the main account cannot cover them all, the first checks take what it has.
	order := make([]common.Address, 0, len(as.wallets))
	sort.SliceStable(as.wallets, func(i, j int) bool { return as.wallets[i].urgency.Cmp(as.wallets[j].urgency) > 0 })
	for _, w := range as.wallets {
		order = append(order, w.addr)
	}
	var errs []error
	for _, addr := range order {
		body, err := queue.NewEnvelope(ctx, queue.TypeBalanceCheck, queue.NewID(), "balance-check-"+queue.NewID(),
			queue.BalanceCheckRequested{Chain: c.Name, Account: addr.Hex()})
		if err == nil {
			err = a.d.Queue.Send(ctx, queue.BalanceCheck, body, queue.SendOptions{})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("queue balance-check of %s: %w", addr.Hex(), err))
		}
	}
	stale, err := a.d.Store.StalePendingTransfers(ctx, c.Name, a.d.StaleAfter)
	if err != nil {
		errs = append(errs, err)
	}
	for _, t := range stale {
		if err := a.requestTransfer(ctx, nil, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// alertMain fires main_account_low when the main account lacks anything to cover the deficits of an
// asset (those in the new deficits and those already queued and waiting), and resolves it otherwise.
func (a *Manager) alertMain(ctx context.Context, c config.Chain, asset string, main mainState, deficits []*big.Int) {
	_, missing := Cover(main.available(), deficits)
	a.m.Unmet(c.Name, asset, missing)
	key := fmt.Sprintf("%s:%s:%s", AlertMainAccountLow, c.Name, asset)
	if missing.Sign() == 0 {
		a.d.Alerts.Resolve(ctx, key)
		return
	}
	a.d.Alerts.Fire(ctx, alert.Alert{Key: key, Kind: AlertMainAccountLow, Severity: alert.Critical,
		Summary: fmt.Sprintf("main account %s on %s lacks %s base units of %s to top up the hot wallets; top-ups wait until it is funded",
			c.MainAccount.Hex(), c.Name, missing, asset),
		Labels: map[string]string{"chain": c.Name, "asset": asset, "wallet": c.MainAccount.Hex()},
		Details: map[string]any{"missing": missing.String(), "balance": main.balance.String(), "committed": main.committed.String(),
			"deficits": len(deficits)}})
}

// mainState is the main account's position in one asset.
type mainState struct {
	balance   *big.Int
	committed *big.Int // top-ups from it queued or signed and not mined yet
}

func (m mainState) available() *big.Int { return new(big.Int).Sub(m.balance, m.committed) }

// walletState is one hot wallet's position in every managed asset.
type walletState struct {
	addr    common.Address
	assets  map[string]assetState
	urgency *big.Rat // the most urgent of its assets
}

type assetState struct {
	pos   Position
	topUp *big.Int // what its band asks, nil for nothing
	sweep *big.Int
	epoch map[string]int64 // kind → epoch of its next transfer
}

type assessment struct {
	main    map[string]mainState
	wallets []*walletState
}

// assess reads the transfers first and the chain after, so a top-up the database no longer shows as in
// flight is already in the balances read (a stale balance can make a deficit look smaller, never larger).
func (a *Manager) assess(ctx context.Context, cd ChainDeps, wallets []config.Address) (*assessment, error) {
	c := cd.Config
	book, err := a.d.Store.Transfers(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	main := c.MainAccount.Common()
	mainMined, err := cd.Client.NonceAt(ctx, main)
	if err != nil {
		return nil, fmt.Errorf("mined nonce of %s: %w", main.Hex(), err)
	}
	// unmined: queued (no transaction yet) or signed at a nonce the chain has not mined.
	unmined := func(o store.OpenTransfer, mined uint64) bool { return o.Nonce == nil || *o.Nonce >= mined }
	as := &assessment{main: map[string]mainState{}}
	for _, asset := range c.ManagedAssets() {
		bal, err := balanceOf(ctx, cd.Client, asset, main)
		if err != nil {
			return nil, err
		}
		ms := mainState{balance: bal, committed: new(big.Int)}
		for _, o := range book.Open {
			if o.Kind == store.TransferTopUp && o.Asset == asset.Symbol && common.HexToAddress(o.From) == main && unmined(o, mainMined) {
				ms.committed.Add(ms.committed, o.Amount)
			}
		}
		as.main[asset.Symbol] = ms
	}
	for _, w := range wallets {
		addr := w.Common()
		// The wallet's balances before its mined nonce: a payment of its own mined in between is in
		// neither (the balance was read before it, and its nonce is below the one read), never in both,
		// so the deficit can come out smaller, never larger. The main account's nonce was read before
		// these balances for the same reason: a top-up mined in between counts as incoming and in the
		// balance, which again only makes the deficit smaller.
		bals := map[string]*big.Int{}
		for _, asset := range c.ManagedAssets() {
			if bals[asset.Symbol], err = balanceOf(ctx, cd.Client, asset, addr); err != nil {
				return nil, err
			}
		}
		mined, err := cd.Client.NonceAt(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("mined nonce of %s: %w", addr.Hex(), err)
		}
		out, err := a.d.Store.UnminedOutflows(ctx, c.Name, addr.Hex(), mined)
		if err != nil {
			return nil, err
		}
		ws := &walletState{addr: addr, assets: map[string]assetState{}, urgency: new(big.Rat)}
		draining, idle, tokensLeft := c.IsDraining(w), false, false
		if draining {
			busy, err := a.d.Store.DrainState(ctx, c.Name, addr.Hex())
			if err != nil {
				return nil, err
			}
			idle = busy.Idle()
			for _, asset := range c.ManagedAssets() {
				tokensLeft = tokensLeft || (!asset.Native() && bals[asset.Symbol].Sign() > 0)
			}
		}
		for _, asset := range c.ManagedAssets() {
			p := Position{Balance: bals[asset.Symbol], Incoming: new(big.Int), Outgoing: new(big.Int)}
			if o := out[asset.Symbol]; o != nil {
				p.Outgoing.Add(p.Outgoing, o)
			}
			for _, o := range book.Open {
				if o.Asset != asset.Symbol {
					continue
				}
				switch {
				case o.Kind == store.TransferTopUp && common.HexToAddress(o.To) == addr && unmined(o, mainMined):
					p.Incoming.Add(p.Incoming, o.Amount)
				case o.Kind == store.TransferSweep && common.HexToAddress(o.From) == addr && unmined(o, mined):
					p.Outgoing.Add(p.Outgoing, o.Amount)
				}
			}
			band := BandOf(asset.TopUp)
			st := assetState{pos: p, epoch: map[string]int64{
				store.TransferTopUp: book.Epoch(store.TransferTopUp, addr.Hex(), asset.Symbol),
				store.TransferSweep: book.Epoch(store.TransferSweep, addr.Hex(), asset.Symbol),
			}}
			if draining {
				st.sweep = Drain(asset.Native(), p, idle, tokensLeft, SweepReserve(c))
			} else {
				st.topUp, st.sweep = Need(band, p)
			}
			if u := Urgency(band, p); st.topUp != nil && u.Cmp(ws.urgency) > 0 {
				ws.urgency = u
			}
			ws.assets[asset.Symbol] = st
		}
		as.wallets = append(as.wallets, ws)
	}
	return as, nil
}

func balanceOf(ctx context.Context, c Chain, asset config.Asset, who common.Address) (*big.Int, error) {
	if asset.Native() {
		b, err := c.BalanceAt(ctx, who)
		if err != nil {
			return nil, fmt.Errorf("balance of %s: %w", who.Hex(), err)
		}
		return b, nil
	}
	b, err := c.TokenBalance(ctx, asset.Address.Common(), who)
	if err != nil {
		return nil, fmt.Errorf("%s balance of %s: %w", asset.Symbol, who.Hex(), err)
	}
	return b, nil
}

// checkRetry is how soon a balance-check another instance is busy with the same chain is tried again.
const checkRetry = time.Second

// Handle processes one balance-check message: it reads the account's position in every managed asset
// and queues what its band asks for, each transfer with its row and message in one database
// transaction under its idempotency key. A check that keeps failing (a node down) is dropped on its
// last delivery rather than dead-lettered: the next round checks the account afresh.
func (a *Manager) Handle(ctx context.Context, m queue.Message) error {
	err := a.handle(ctx, m)
	if err != nil && m.ReceiveCount >= queue.MaxReceiveCount && !permanent(err) {
		a.log.Warn("balance check keeps failing; dropped, the next round checks again", "err", err, "receives", m.ReceiveCount)
		return nil
	}
	return err
}

// permanent reports an error the consumer dead-letters at once (a message that can never be handled).
func permanent(err error) bool {
	var e *txerr.Error
	return errors.As(err, &e) && !e.Type.Retryable()
}

func (a *Manager) handle(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.BalanceCheckRequested](m.Body, queue.TypeBalanceCheck)
	if err != nil {
		return err
	}
	cd, ok := a.d.Chains[p.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "balance-check: chain %q is not configured", p.Chain)
	}
	acct, err := config.ParseAddress(p.Account)
	if err != nil || !cd.Config.IsHotWallet(acct) {
		return txerr.Permanentf(txerr.InvalidTransaction, "balance-check: %q is not a hot wallet of %s", p.Account, p.Chain)
	}
	if !managed(cd.Config) {
		return nil
	}
	// One check of a chain at a time, across instances: the main account's cover is decided on what
	// the checks before this one committed.
	unlock, owner, err := a.d.Store.TryLock(ctx, "accountmgr/check/"+p.Chain)
	if err != nil {
		return err
	}
	if !owner {
		body, err := queue.NewEnvelope(ctx, queue.TypeBalanceCheck, queue.NewID(), env.CorrelationID, p)
		if err != nil {
			return err
		}
		return a.d.Queue.Send(ctx, queue.BalanceCheck, body, queue.SendOptions{Delay: checkRetry})
	}
	defer unlock()
	as, err := a.assess(ctx, cd, []config.Address{acct})
	if err != nil {
		return err
	}
	c := cd.Config
	w := as.wallets[0]
	log := a.log.With("chain", c.Name, "account", w.addr.Hex(), "correlation_id", env.CorrelationID)
	var errs []error
	for _, asset := range c.ManagedAssets() {
		st := w.assets[asset.Symbol]
		switch {
		case st.topUp != nil:
			ms := as.main[asset.Symbol]
			if st.topUp.Cmp(ms.available()) > 0 {
				// Never in part: it waits for the main account (the round's main_account_low says how much
				// is missing), and the next check asks afresh.
				log.Warn("main account cannot cover this deficit; not topped up", "asset", asset.Symbol, "deficit", st.topUp,
					"available", ms.available(), "effective", st.pos.Effective())
				continue
			}
			errs = append(errs, a.queueTransfer(ctx, log, c, asset.Symbol, store.TransferTopUp, c.MainAccount.Hex(), w.addr.Hex(),
				st.topUp, st.epoch[store.TransferTopUp], st.pos))
		case st.sweep != nil:
			errs = append(errs, a.queueTransfer(ctx, log, c, asset.Symbol, store.TransferSweep, w.addr.Hex(), c.MainAccount.Hex(),
				st.sweep, st.epoch[store.TransferSweep], st.pos))
		}
	}
	return errors.Join(errs...)
}

// queueTransfer inserts a transfer under its idempotency key with its balance-transfer message, in one
// database transaction; a key already taken means this deficit is already answered, and nothing is
// written.
func (a *Manager) queueTransfer(ctx context.Context, log *slog.Logger, c config.Chain, asset, kind, from, to string,
	amount *big.Int, epoch int64, pos Position) error {
	account := to
	if kind == store.TransferSweep {
		account = from
	}
	t := &store.BalanceTransfer{ID: queue.NewID(), Chain: c.Name, Asset: asset, Kind: kind, From: from, To: to, Amount: amount,
		Key: store.TransferKey(kind, c.Name, account, asset, epoch), Epoch: epoch,
		Reason: fmt.Sprintf("balance %s, incoming %s, outgoing %s", pos.Balance, pos.Incoming, pos.Outgoing)}
	created := false
	err := a.d.Store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if created, err = a.d.Store.InsertBalanceTransfer(ctx, tx, t); err != nil || !created {
			return err
		}
		return a.requestTransfer(ctx, tx, t)
	})
	if err != nil {
		return err
	}
	if !created {
		log.Info("deficit already answered", "key", t.Key)
		return nil
	}
	a.m.TransferQueued(c.Name, asset, kind)
	log.Info("balance transfer queued", "kind", kind, "asset", asset, "amount", amount, "key", t.Key, "transfer_id", t.ID)
	return nil
}

// requestTransfer queues the balance-transfer message of t: inside tx when given, else on its own.
func (a *Manager) requestTransfer(ctx context.Context, tx *sql.Tx, t *store.BalanceTransfer) error {
	body, err := queue.NewEnvelope(ctx, queue.TypeBalanceTransfer, queue.NewID(), t.Kind+"-"+t.ID,
		queue.BalanceTransferRequested{TransferID: t.ID})
	if err != nil {
		return err
	}
	if tx != nil {
		return a.d.Sender.SendTx(ctx, tx, queue.BalanceTransfer, body, queue.SendOptions{})
	}
	return a.d.Queue.Send(ctx, queue.BalanceTransfer, body, queue.SendOptions{})
}
