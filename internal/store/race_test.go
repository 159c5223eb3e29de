package store_test

// Two instances of a service share one database and nothing else. These tests race two *store.Store,
// each with its own connection pool as two processes have, on every write two instances can reach for
// at once, many rounds each, and check that the database guard lets exactly one win.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

const raceRounds = 50

// twoInstances returns two stores on one fresh database, each with its own pool.
func twoInstances(t *testing.T) [2]*store.Store {
	t.Helper()
	a, dsn := testenv.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := store.Open(ctx, dsn, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return [2]*store.Store{a, b}
}

// race runs f once on each instance at the same moment and returns their errors.
func race(ss [2]*store.Store, f func(i int, s *store.Store) error) [2]error {
	var (
		errs  [2]error
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i, s)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner fails unless exactly one error is nil and the other is loser.
func oneWinner(t *testing.T, round int, what string, errs [2]error, loser error) int {
	t.Helper()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("round %d: %s: both instances won", round, what)
			}
			won = i
		case !errors.Is(err, loser):
			t.Fatalf("round %d: %s: instance %d: %v, want nil or %v", round, what, i, err, loser)
		}
	}
	if won < 0 {
		t.Fatalf("round %d: %s: neither instance won: %v", round, what, errs)
	}
	return won
}

// Two signers' batchers claim the same PENDING withdrawals, then (their claims gone stale, the signer
// dead) reclaim them: every withdrawal is claimed by exactly one, and reclaimed by exactly one.
func TestRaceTwoBatchersClaimEachWithdrawalOnce(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	c, err := ss[0].EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	const perRound = 6
	for round := range raceRounds {
		ids := map[string]bool{}
		for range perRound {
			ids[newWithdrawal(t, ss[0], c.ID, "ext-"+queue.NewID()).ID] = true
		}
		claim := func(stale time.Duration, what string) {
			var got [2][]*store.Withdrawal
			errs := race(ss, func(i int, s *store.Store) error {
				var err error
				got[i], err = s.ClaimForBatch(ctx, "local", "POL", perRound, stale, store.ActorSigner)
				return err
			})
			seen := map[string]int{}
			for i := range got {
				if errs[i] != nil {
					t.Fatalf("round %d: %s: instance %d: %v", round, what, i, errs[i])
				}
				for _, w := range got[i] {
					seen[w.ID]++
					if w.Status != store.Signing {
						t.Fatalf("round %d: %s: %s returned as %s", round, what, w.ID, w.Status)
					}
				}
			}
			if len(seen) != perRound {
				t.Fatalf("round %d: %s: %d withdrawals claimed, want %d", round, what, len(seen), perRound)
			}
			for id, n := range seen {
				if !ids[id] || n != 1 {
					t.Fatalf("round %d: %s: withdrawal %s claimed %d times (of this round: %v)", round, what, id, n, ids[id])
				}
			}
		}
		claim(time.Hour, "claim")
		// The claims age past the lease: both batchers see them stale at once.
		for id := range ids {
			if _, err := ss[0].DB.ExecContext(ctx, `UPDATE withdrawals SET updated_at = updated_at - INTERVAL 2 HOUR WHERE id = ?`, id); err != nil {
				t.Fatal(err)
			}
		}
		claim(time.Hour, "reclaim")
	}
	// Every claim and reclaim wrote one history line: none was made twice.
	var n int
	if err := ss[0].DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM withdrawal_history WHERE to_status = ?`, store.Signing).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2*perRound*raceRounds {
		t.Fatalf("%d SIGNING history lines, want %d", n, 2*perRound*raceRounds)
	}
}

// A signer and the gap filler (or two gap fillers, one per signer instance) record a transaction at the
// same nonce: the unique nonce key lets one in, the other gets ErrNonceTaken.
func TestRaceTwoInstancesRecordOneNonce(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	for round := range raceRounds {
		errs := race(ss, func(i int, s *store.Store) error {
			return s.InTx(ctx, func(tx *sql.Tx) error {
				_, err := s.InsertSentTx(ctx, tx, sentTx(uint64(round), fmt.Sprintf("0x%064x", 3_000_000+2*round+i)))
				return err
			})
		})
		oneWinner(t, round, "record nonce", errs, store.ErrNonceTaken)
	}
	var n int
	if err := ss[0].DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM tx_attempts`).Scan(&n); err != nil || n != raceRounds {
		t.Fatalf("%d attempts recorded (%v), want %d: a loser left an attempt behind", n, err, raceRounds)
	}
}

// recordSigned records a SIGNED transaction for one withdrawal moved to SIGNED with it.
func recordSigned(t *testing.T, s *store.Store, clientID int64, nonce uint64) (*store.SentTx, *store.Withdrawal) {
	t.Helper()
	ctx := context.Background()
	w := newWithdrawal(t, s, clientID, "ext-"+queue.NewID())
	st := sentTx(nonce, fmt.Sprintf("0x%064x", 1_000_000+nonce))
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		id, err := s.InsertSentTx(ctx, tx, st)
		if err != nil {
			return err
		}
		if err := s.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "t", store.ActorSigner, store.Change{}); err != nil {
			return err
		}
		return s.Transition(ctx, tx, w.ID, store.Signing, store.Signed, "t", store.ActorSigner, store.Change{SentTxID: &id})
	}); err != nil {
		t.Fatal(err)
	}
	return st, w
}

// Two signers take the same re-fee request (a redelivery, or two requests for one refused attempt):
// each signs a replacement of the current attempt; only one replaces it, and only its attempt is kept.
// Then two broadcasters mark the winner sent, and two monitors settle it: one each.
func TestRaceRefeeBroadcastAndSettleOfOneNonce(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	c, err := ss[0].EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	for round := range raceRounds {
		st, w := recordSigned(t, ss[0], c.ID, uint64(round))

		// Re-fee: store.ReplaceAttempt, conditional on the current hash and SIGNED.
		var next [2]*store.SentTx
		errs := race(ss, func(i int, s *store.Store) error {
			n := sentTx(st.Nonce, fmt.Sprintf("0x%064x", 2_000_000+2*round+i))
			n.ID, n.MaxFeePerGas, n.MaxPriorityFee = st.ID, big.NewInt(int64(20+i)), big.NewInt(int64(2+i))
			next[i] = n
			return s.InTx(ctx, func(tx *sql.Tx) error { return s.ReplaceAttempt(ctx, tx, n, st.Hash, store.TxSigned) })
		})
		won := oneWinner(t, round, "re-fee", errs, store.ErrConflict)
		got, err := ss[0].GetSentTx(ctx, st.ID)
		if err != nil || got.Hash != next[won].Hash || got.MaxFeePerGas.Cmp(next[won].MaxFeePerGas) != 0 {
			t.Fatalf("round %d: row %+v (%v), want the winner's attempt %s", round, got, err, next[won].Hash)
		}
		if hs, err := ss[0].AttemptHashes(ctx, st.ID); err != nil || len(hs) != 2 || hs[0] != next[won].Hash {
			t.Fatalf("round %d: attempts %v (%v), want the first and the winner's", round, hs, err)
		}

		// Broadcaster marking (markBroadcasted): the sent tx and its withdrawals move once.
		errs = race(ss, func(i int, s *store.Store) error {
			return s.InTx(ctx, func(tx *sql.Tx) error {
				if err := s.SetSentTxStatus(ctx, tx, st.ID, store.TxSigned, store.TxBroadcasted); err != nil {
					return err
				}
				return s.Transition(ctx, tx, w.ID, store.Signed, store.Broadcasted, "sent", store.ActorBroadcaster, store.Change{})
			})
		})
		oneWinner(t, round, "mark broadcasted", errs, store.ErrConflict)

		// Monitor settling (settle): the receipt is recorded and the withdrawal confirmed once.
		errs = race(ss, func(i int, s *store.Store) error {
			return s.InTx(ctx, func(tx *sql.Tx) error {
				r := store.Receipt{Hash: next[won].Hash, BlockNumber: uint64(100 + i), BlockHash: hash(byte(i)), Status: 1, GasUsed: 21000}
				if err := s.FinishSentTx(ctx, tx, st.ID, store.TxConfirmed, r); err != nil {
					return err
				}
				bn := uint64(100 + i)
				return s.Transition(ctx, tx, w.ID, store.Broadcasted, store.Confirmed, "mined", store.ActorMonitor, store.Change{BlockNumber: &bn})
			})
		})
		oneWinner(t, round, "settle", errs, store.ErrConflict)
		h, err := ss[0].History(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 5 { // created, SIGNING, SIGNED, BROADCASTED, CONFIRMED
			t.Fatalf("round %d: history %+v, want each step once", round, h)
		}
	}
}

// Two API instances take the same request (a client retry landing on the other instance): one
// withdrawal is made, and both answers name it.
func TestRaceTwoAPIInstancesCreateOneWithdrawal(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	c, err := ss[0].EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	// Both instances bootstrap the same API key at start.
	if errs := race(ss, func(_ int, s *store.Store) error {
		_, err := s.EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
		return err
	}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("bootstrapping one API key from two instances: %v", errs)
	}
	for round := range raceRounds {
		ext := fmt.Sprintf("race-%d-%s", round, queue.NewID())
		var (
			got     [2]*store.Withdrawal
			created [2]bool
		)
		errs := race(ss, func(i int, s *store.Store) error {
			w := &store.Withdrawal{ID: queue.NewID(), ClientID: c.ID, ExternalID: ext, RequestHash: make([]byte, 32),
				Chain: "local", Asset: "POL", To: "0x000000000000000000000000000000000000dEaD", Amount: big.NewInt(5), CorrelationID: "c"}
			var err error
			got[i], created[i], err = s.CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil })
			return err
		})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", round, errs)
		}
		if created[0] == created[1] || got[0].ID != got[1].ID {
			t.Fatalf("round %d: created %v, ids %s %s: want one made and both naming it", round, created, got[0].ID, got[1].ID)
		}
	}
}

// Two signer instances reach for the same batch group's lock at once, round after round: exactly one
// owns it; once it lets go, or its connection dies with its process, the other gets it.
func TestRaceTwoInstancesTakeOneGroupLock(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	for round := range raceRounds {
		name := fmt.Sprintf("batch/local/USDT/%d", round%3)
		var unlocks [2]func()
		var owned [2]bool
		errs := race(ss, func(i int, s *store.Store) error {
			var err error
			unlocks[i], owned[i], err = s.TryLock(ctx, name)
			return err
		})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", round, errs)
		}
		if owned[0] == owned[1] {
			t.Fatalf("round %d: owners %v: want exactly one", round, owned)
		}
		winner := 0
		if owned[1] {
			winner = 1
		}
		loser := ss[1-winner]
		if _, ok, err := loser.TryLock(ctx, name); err != nil || ok {
			t.Fatalf("round %d: the loser took a held lock (%v)", round, err)
		}
		unlocks[winner]()
		unlock, ok, err := loser.TryLock(ctx, name)
		if err != nil || !ok {
			t.Fatalf("round %d: the lock was not free once released (%v)", round, err)
		}
		unlock()
	}
	// An owner whose process dies (the server sees its connection go) frees the lock: take it on a
	// connection of its own, as TryLock does, and kill that connection.
	conn, err := ss[1].DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id, got int64
	if err := conn.QueryRowContext(ctx, `SELECT CONNECTION_ID(), GET_LOCK(SHA1(CONCAT(DATABASE(), '/', ?)), 0)`, "batch/local/POL").Scan(&id, &got); err != nil || got != 1 {
		t.Fatalf("lock on a connection of its own: %v %v", got, err)
	}
	if _, ok, _ := ss[0].TryLock(ctx, "batch/local/POL"); ok {
		t.Fatal("a held lock was taken")
	}
	if _, err := ss[0].DB.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		unlock, ok, err := ss[0].TryLock(ctx, "batch/local/POL")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			unlock()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock of a closed instance was never freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two instances (an operator's and a client's request, say) redeliver the same dead webhook delivery at
// once, round after round: exactly one puts it back to pending, the other gets ErrConflict, and it is
// counted once. The same for a whole endpoint: the dead deliveries are queued by one request only.
func TestRaceTwoInstancesRedeliverOneWebhook(t *testing.T) {
	ss := twoInstances(t)
	ctx := context.Background()
	c, err := ss[0].EnsureAPIClient(ctx, "t", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ss[0].AddWebhookEndpoint(ctx, c.ID, "https://hooks.example/x", "whsec_x")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		id := queue.NewID()
		w := &store.Withdrawal{ID: id, ClientID: c.ID, ExternalID: fmt.Sprintf("hook-%d", i), RequestHash: make([]byte, 32),
			Chain: "local", Asset: "POL", To: "0x000000000000000000000000000000000000dEaD", Amount: big.NewInt(5), CorrelationID: "c"}
		if _, _, err := ss[0].CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := ss[0].InTx(ctx, func(tx *sql.Tx) error {
			return ss[0].Transition(ctx, tx, id, store.Pending, store.Canceled, "test", store.ActorSigner, store.Change{})
		}); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() {
		t.Helper()
		if _, err := ss[0].DB.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'dead' WHERE endpoint_id = ?`, ep.ID); err != nil {
			t.Fatal(err)
		}
	}
	kill()
	ds, err := ss[0].DeadWebhookDeliveries(ctx, store.DeadLetterFilter{EndpointID: ep.ID})
	if err != nil || len(ds) != n {
		t.Fatalf("%d dead (%v), want %d", len(ds), err, n)
	}
	one := ds[0].ID
	for round := range raceRounds {
		errs := race(ss, func(i int, s *store.Store) error {
			_, err := s.RedeliverWebhook(ctx, c.ID, ep.ID, one, fmt.Sprintf("instance-%d", i))
			return err
		})
		won := oneWinner(t, round, "redeliver one", errs, store.ErrConflict)
		d, err := ss[0].WebhookDeliveryByID(ctx, 0, 0, one)
		if err != nil || d.State != "pending" || d.Redeliveries != round+1 || d.RedeliveredBy != fmt.Sprintf("instance-%d", won) {
			t.Fatalf("round %d: %+v %v: want pending, redelivered %d times, last by instance-%d", round, d, err, round+1, won)
		}
		kill()
	}
	for round := range 10 {
		var queued [2]int
		errs := race(ss, func(i int, s *store.Store) error {
			var err error
			queued[i], err = s.RedeliverDeadWebhooks(ctx, 0, ep.ID, time.Time{}, "op")
			return err
		})
		if errs[0] != nil || errs[1] != nil || queued[0]+queued[1] != n || (queued[0] != 0 && queued[1] != 0) {
			t.Fatalf("round %d: queued %v (%v), want all %d by one request", round, queued, errs, n)
		}
		kill()
	}
	// Another client's request, or another endpoint's, finds nothing.
	if _, err := ss[0].RedeliverWebhook(ctx, c.ID+1000, 0, one, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another client's redeliver: %v, want ErrNotFound", err)
	}
	if _, err := ss[0].RedeliverWebhook(ctx, c.ID, ep.ID+1000, one, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another endpoint's redeliver: %v, want ErrNotFound", err)
	}
	if n, err := ss[0].RedeliverDeadWebhooks(ctx, c.ID+1000, ep.ID, time.Time{}, "x"); err != nil || n != 0 {
		t.Fatalf("another client's bulk redeliver queued %d (%v)", n, err)
	}
}
