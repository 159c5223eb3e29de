package recovery_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/recovery"
)

func blk(n uint64) *uint64 { return &n }

// The stuck rule on its own: consumed nonces are the monitor's, a fresh attempt gets a clock, and a
// clock stuck_after_blocks old (or older) is stuck.
func TestDecide(t *testing.T) {
	const a, b = "0xAAaa000000000000000000000000000000000001", "0xbbBB000000000000000000000000000000000002"
	mined := map[string]uint64{strings.ToLower(a): 5, strings.ToLower(b): 0}
	for _, c := range []struct {
		name        string
		row         store.InFlight
		unseen, stk bool
	}{
		{"nonce below the mined one: consumed, the monitor settles it", store.InFlight{ID: 1, From: a, Nonce: 4, AttemptBlock: blk(0)}, false, false},
		{"no clock yet: started", store.InFlight{ID: 2, From: a, Nonce: 5}, true, false},
		{"4 blocks of 5: waits", store.InFlight{ID: 3, From: a, Nonce: 5, AttemptBlock: blk(96)}, false, false},
		{"5 blocks: stuck", store.InFlight{ID: 4, From: a, Nonce: 5, AttemptBlock: blk(95)}, false, true},
		{"a later nonce waiting long: stuck too", store.InFlight{ID: 5, From: a, Nonce: 9, AttemptBlock: blk(10)}, false, true},
		{"clock ahead of the head (another node's view): waits", store.InFlight{ID: 6, From: b, Nonce: 0, AttemptBlock: blk(120)}, false, false},
		{"address without a mined nonce read: judged by its clock", store.InFlight{ID: 7, From: "0xcc00000000000000000000000000000000000003", Nonce: 0, AttemptBlock: blk(1)}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := recovery.Decide([]store.InFlight{c.row}, mined, 100, 5)
			if got := len(p.Unseen) == 1; got != c.unseen {
				t.Fatalf("clock started %v, want %v", got, c.unseen)
			}
			if got := len(p.Stuck) == 1; got != c.stk {
				t.Fatalf("stuck %v, want %v", got, c.stk)
			}
		})
	}
}

// The default threshold: ceil(10 s / block time), within 3..20.
func TestStuckAfterBlocksFor(t *testing.T) {
	for bt, want := range map[time.Duration]uint64{2 * time.Second: 5, 12 * time.Second: 3, time.Second: 10,
		100 * time.Millisecond: 20, 3 * time.Second: 4, 0: 5} {
		if got := config.StuckAfterBlocksFor(bt); got != want {
			t.Errorf("block time %s: %d blocks, want %d", bt, got, want)
		}
	}
}

// BenchmarkStuckScan is one sweep's scan of a chain with 10,000 transactions in flight (real MariaDB
// rows, 20 wallets): the query and the decision, without the node calls (those are per stuck
// transaction and per wallet, not per row).
func BenchmarkStuckScan(b *testing.B) {
	s, _ := testenv.Store(b)
	ctx := context.Background()
	const n, wallets = 10_000, 20
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < n; i += 500 {
			var (
				q    strings.Builder
				args []any
			)
			q.WriteString(`INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address, tx_hash, raw_tx, gas_limit,
				max_fee_per_gas, max_priority_fee, kind, source, status, attempt_block) VALUES `)
			for j := i; j < i+500; j++ {
				if j > i {
					q.WriteString(",")
				}
				q.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
				from := fmt.Sprintf("0x%040x", j%wallets+1)
				args = append(args, "local", 1, from, j/wallets, from, fmt.Sprintf("0x%064x", j), make([]byte, 110), 21000,
					"30000000000", "2000000000", "withdrawal", "signer", store.TxBroadcasted, 1000+j%7)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		// Settled history the scan must skip cheaply.
		_, err := tx.ExecContext(ctx, `INSERT INTO sent_transactions (chain, chain_id, from_address, nonce, to_address, tx_hash, raw_tx,
			gas_limit, max_fee_per_gas, max_priority_fee, kind, source, status)
			SELECT chain, chain_id, from_address, nonce + 100000, to_address, CONCAT('0x1', SUBSTRING(tx_hash, 4)), raw_tx, gas_limit,
			max_fee_per_gas, max_priority_fee, kind, source, 'CONFIRMED' FROM sent_transactions`)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	mined := map[string]uint64{}
	for w := 1; w <= wallets; w++ {
		mined[fmt.Sprintf("0x%040x", w)] = 100 // the first 100 nonces of each wallet are consumed
	}
	b.ResetTimer()
	var p recovery.Plan
	for b.Loop() {
		rows, err := s.InFlightTxs(ctx, 1)
		if err != nil || len(rows) != n {
			b.Fatalf("%d rows (%v)", len(rows), err)
		}
		p = recovery.Decide(rows, mined, 1005, 5)
	}
	b.StopTimer()
	if len(p.Stuck) == 0 || len(p.Stuck) >= n {
		b.Fatalf("%d stuck of %d: the decision did not discriminate", len(p.Stuck), n)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}
