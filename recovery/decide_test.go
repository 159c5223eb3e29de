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

// The stuck rule on its own: consumed nonces are the monitor's, a fresh attempt gets a clock, a clock
// stuck_after_blocks old (or older) is stuck, unless a gap below it is what it waits for.
func TestDecide(t *testing.T) {
	const a, b = "0xAAaa000000000000000000000000000000000001", "0xbbBB000000000000000000000000000000000002"
	const c = "0xcc00000000000000000000000000000000000003"
	mined := map[string]uint64{strings.ToLower(a): 5, strings.ToLower(b): 0}
	for _, tt := range []struct {
		name  string
		rows  []store.InFlight
		stuck []int64
		clock []int64
	}{
		{"nonce below the mined one: consumed, the monitor settles it",
			[]store.InFlight{{ID: 1, From: a, Nonce: 4, AttemptBlock: blk(0)}}, nil, nil},
		{"no clock yet: started", []store.InFlight{{ID: 2, From: a, Nonce: 5}}, nil, []int64{2}},
		{"4 blocks of 5: waits", []store.InFlight{{ID: 3, From: a, Nonce: 5, AttemptBlock: blk(96)}}, nil, nil},
		{"5 blocks: stuck", []store.InFlight{{ID: 4, From: a, Nonce: 5, AttemptBlock: blk(95)}}, []int64{4}, nil},
		{"a run of old nonces from the mined one: all stuck",
			[]store.InFlight{{ID: 5, From: a, Nonce: 5, AttemptBlock: blk(10)}, {ID: 6, From: a, Nonce: 6, AttemptBlock: blk(10)},
				{ID: 7, From: a, Nonce: 7, AttemptBlock: blk(99)}}, []int64{5, 6}, nil},
		{"above a gap: waiting for the gap, not for fees",
			[]store.InFlight{{ID: 8, From: a, Nonce: 6, AttemptBlock: blk(10)}, {ID: 9, From: a, Nonce: 7}}, nil, []int64{9}},
		{"above a gap further up: the run below it is stuck, the rest waits",
			[]store.InFlight{{ID: 10, From: a, Nonce: 5, AttemptBlock: blk(10)}, {ID: 11, From: a, Nonce: 8, AttemptBlock: blk(10)}}, []int64{10}, nil},
		{"clock ahead of the head (another node's view): waits",
			[]store.InFlight{{ID: 12, From: b, Nonce: 0, AttemptBlock: blk(120)}}, nil, nil},
		{"address without a mined nonce read: judged by its clock",
			[]store.InFlight{{ID: 13, From: c, Nonce: 3, AttemptBlock: blk(1)}}, []int64{13}, nil},
		{"addresses are judged apart",
			[]store.InFlight{{ID: 14, From: a, Nonce: 9, AttemptBlock: blk(1)}, {ID: 15, From: b, Nonce: 0, AttemptBlock: blk(1)}}, []int64{15}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := recovery.Decide(tt.rows, mined, 100, 5)
			var stuck []int64
			for _, r := range p.Stuck {
				stuck = append(stuck, r.ID)
			}
			if fmt.Sprint(stuck) != fmt.Sprint(tt.stuck) || fmt.Sprint(p.Unseen) != fmt.Sprint(tt.clock) {
				t.Fatalf("stuck %v, clocks started %v; want %v, %v", stuck, p.Unseen, tt.stuck, tt.clock)
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
