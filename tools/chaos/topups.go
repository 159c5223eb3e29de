package chaos

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/store"
)

// The main account and the top-up bands (`sluice accountmgr` under chaos).
//
// The hot wallet keeps its large balance, so withdrawals never run dry, but each asset's band sits just
// above it: min = balance + topUpMin, target = balance + topUpTarget. The first round tops it up, and the
// withdrawals drain it below min again every few dozen, so top-ups keep happening all run long while
// accountmgr and the signer are killed and messages redelivered. The main account holds a small float
// (mainFloat times the target's excess): enough for a handful of top-ups, so it may run short (an alert,
// never a partial top-up) before the run ends.
//
// Double top-up, precisely (checkTopUps):
//   - two top-ups that are not FAILED for one deficit: the same (kind, chain, account, asset, epoch) —
//     the idempotency key — read from balance_transfers without relying on its unique index; or
//   - a wallet's balance, read from the chain once everything is settled, above target plus the largest
//     single top-up it received plus what was signed out of it and then not paid (a withdrawal FAILED or
//     returned after signing gives its outflow back): a deficit paid twice leaves one deficit too much,
//     and only later withdrawals could hide it, which a run's last top-up has none of.
// Each confirmed top-up is also checked to have been mined (its sent transaction CONFIRMED) and the main
// account's nonces to have no gap (added to nonce gaps).

var (
	topUpMinPOL     = units(20, 18)
	topUpTargetPOL  = units(50, 18)
	topUpMinUSDT    = units(20_000, 6)
	topUpTargetUSDT = units(50_000, 6)
)

// mainFloat is how many target excesses the main account holds of each asset.
const mainFloat = 4

// topUpInterval is accountmgr.interval under chaos: many rounds in a short run.
const topUpInterval = 2 * time.Second

// setupMainAccount makes, funds and returns the run's main account (key from the seed).
func (r *run) setupMainAccount(ctx context.Context, funder *ecdsa.PrivateKey) (*ecdsa.PrivateKey, error) {
	key, err := seededKey(r.o.Seed, "main account")
	if err != nil {
		return nil, err
	}
	r.main = crypto.PubkeyToAddress(key.PublicKey)
	r.keys = append(r.keys, secretKey{"main account", crypto.FromECDSA(key)})
	gas := units(10, 18)
	if _, err := contracts.Transact(ctx, r.eth, funder, r.chainID, r.main, new(big.Int).Add(gas, mul(topUpTargetPOL, mainFloat)), nil, 21000); err != nil {
		return nil, fmt.Errorf("fund the main account: %w", err)
	}
	if err := contracts.Mint(ctx, r.eth, funder, r.chainID, r.addrs.USDT, r.main, mul(topUpTargetUSDT, mainFloat)); err != nil {
		return nil, fmt.Errorf("mint USDT to the main account: %w", err)
	}
	return key, nil
}

func mul(v *big.Int, n int64) *big.Int { return new(big.Int).Mul(v, big.NewInt(n)) }

// topUpBands sets the chain's main account and each asset's band just above the hot wallets' balance
// now (the bands are per asset, shared by the fleet; the wallets start equally funded, and the band
// sits above the smallest balance, so each wallet's first round tops it up).
func (r *run) topUpBands(ctx context.Context, ch *config.Chain) error {
	ch.MainAccount = config.Address(r.main)
	var pol, usdt *big.Int
	for _, hot := range r.hots {
		p, err := r.eth.BalanceAt(ctx, hot, nil)
		if err != nil {
			return err
		}
		u, err := contracts.TokenBalance(ctx, r.eth, r.addrs.USDT, hot)
		if err != nil {
			return err
		}
		if pol == nil || p.Cmp(pol) < 0 {
			pol = p
		}
		if usdt == nil || u.Cmp(usdt) < 0 {
			usdt = u
		}
	}
	for i := range ch.Assets {
		a := &ch.Assets[i]
		bal, lo, hi := pol, topUpMinPOL, topUpTargetPOL
		if !a.Native() {
			bal, lo, hi = usdt, topUpMinUSDT, topUpTargetUSDT
		}
		a.TopUp = config.TopUp{Min: config.NewWei(new(big.Int).Add(bal, lo)), Target: config.NewWei(new(big.Int).Add(bal, hi))}
	}
	r.bands = map[string]config.TopUp{}
	for _, a := range ch.Assets {
		r.bands[a.Symbol] = a.TopUp
	}
	r.logf("main account %s; top-up bands %s", r.main.Hex(), r.formatBands())
	return nil
}

func (r *run) formatBands() string {
	var parts []string
	for sym, b := range r.bands {
		parts = append(parts, fmt.Sprintf("%s min %s target %s", sym, b.Min, b.Target))
	}
	return strings.Join(parts, "; ")
}

// checkTopUps counts the confirmed top-ups and the double ones (see the definition above), and checks
// the main account's nonces.
func (r *run) checkTopUps(ctx context.Context, res *Result) error {
	db := r.db.DB
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM balance_transfers bt JOIN sent_transactions st ON st.id = bt.sent_tx_id
		WHERE bt.kind = ? AND bt.status = ? AND st.status = ?`, store.TransferTopUp, store.TransferConfirmed, store.TxConfirmed).Scan(&res.TopUps); err != nil {
		return fmt.Errorf("count top-ups: %w", err)
	}
	var open int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM balance_transfers WHERE status NOT IN (?, ?)`,
		store.TransferConfirmed, store.TransferFailed).Scan(&open); err != nil {
		return err
	}
	if open > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("note (not a violation): %d balance transfers not settled at the end", open))
	}
	rows, err := db.QueryContext(ctx, `SELECT kind, chain, LOWER(to_address), LOWER(from_address), asset, epoch, COUNT(*) FROM balance_transfers
		WHERE status <> ? GROUP BY kind, chain, LOWER(to_address), LOWER(from_address), asset, epoch HAVING COUNT(*) > 1`, store.TransferFailed)
	if err != nil {
		return fmt.Errorf("double top-ups: %w", err)
	}
	for rows.Next() {
		var kind, chain, to, from, asset string
		var epoch, n int64
		if err := rows.Scan(&kind, &chain, &to, &from, &asset, &epoch, &n); err != nil {
			rows.Close()
			return err
		}
		res.DoubleTopUps += int(n) - 1
		res.Problems = append(res.Problems, fmt.Sprintf("double top-up: %d %s transfers to %s of %s for epoch %d", n, kind, to, asset, epoch))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, hot := range r.hots {
		for sym, band := range r.bands {
			var bal *big.Int
			if sym == "USDT" {
				bal, err = contracts.TokenBalance(ctx, r.eth, r.addrs.USDT, hot)
			} else {
				bal, err = r.eth.BalanceAt(ctx, hot, nil)
			}
			if err != nil {
				return err
			}
			largest, err := r.sumOrMax(ctx, `SELECT amount FROM balance_transfers WHERE kind = ? AND status = ? AND asset = ? AND LOWER(to_address) = ?`,
				false, store.TransferTopUp, store.TransferConfirmed, sym, strings.ToLower(hot.Hex()))
			if err != nil {
				return err
			}
			// Signed out of the hot wallet and then not paid: FAILED with a transaction, or returned to
			// pending after a reverted batch (a history row), which re-credits the wallet's effective balance.
			given, err := r.sumOrMax(ctx, `SELECT w.amount FROM withdrawals w WHERE w.asset = ? AND LOWER(w.from_address) = ? AND (
				(w.status = 'FAILED' AND w.sent_tx_id IS NOT NULL) OR EXISTS (SELECT 1 FROM withdrawal_history h WHERE h.withdrawal_id = w.id
				AND h.to_status = 'PENDING' AND h.from_status IN ('SIGNED', 'BROADCASTED', 'CONFIRMED')))`, true, sym, strings.ToLower(hot.Hex()))
			if err != nil {
				return err
			}
			bound := new(big.Int).Add(band.Target.Int(), largest)
			bound.Add(bound, given)
			if bal.Cmp(bound) > 0 {
				res.DoubleTopUps++
				res.Problems = append(res.Problems, fmt.Sprintf("double top-up: hot wallet %s holds %s %s at the end, above target %s + largest top-up %s + unpaid outflows %s",
					hot.Hex(), bal, sym, band.Target, largest, given))
			}
		}
	}
	return r.checkMainNonces(ctx, res)
}

// sumOrMax adds up (sum) or takes the largest of the decimal amounts a query returns.
func (r *run) sumOrMax(ctx context.Context, q string, sum bool, args ...any) (*big.Int, error) {
	rows, err := r.db.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := new(big.Int)
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("amount %q", s)
		}
		if sum {
			out.Add(out, v)
		} else if v.Cmp(out) > 0 {
			out.Set(v)
		}
	}
	return out, rows.Err()
}

// checkMainNonces adds the main account's nonce gaps (recorded nonces that never mined, nonces mined
// that nothing recorded) to the run's.
func (r *run) checkMainNonces(ctx context.Context, res *Result) error {
	mined, err := r.eth.NonceAt(ctx, r.main, nil)
	if err != nil {
		return err
	}
	pending, err := r.eth.PendingNonceAt(ctx, r.main)
	if err != nil {
		return err
	}
	var recorded, below int
	if err := r.db.DB.QueryRowContext(ctx, `SELECT COUNT(DISTINCT nonce), COUNT(DISTINCT CASE WHEN nonce < ? THEN nonce END)
		FROM sent_transactions WHERE from_address = ?`, mined, r.main.Hex()).Scan(&recorded, &below); err != nil {
		return err
	}
	gaps := int(mined) - below + (recorded - below)
	if pending != mined {
		gaps++
	}
	if gaps > 0 {
		res.NonceGaps += gaps
		extra := ""
		if st, err := nonce.New(r.redis).Peek(ctx, r.chainID.Uint64(), r.main); err == nil {
			extra = fmt.Sprintf("; allocator counter %d, %d leases", st.Next, len(st.Leases))
		}
		res.Problems = append(res.Problems, fmt.Sprintf("main account %s: mined nonce %d, pending %d, %d recorded nonces (%d below mined)%s",
			r.main.Hex(), mined, pending, recorded, below, extra))
	}
	return nil
}
