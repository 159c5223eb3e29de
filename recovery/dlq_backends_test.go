package recovery_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/queue/outbox"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/recovery"
)

// noChain is a node the backend tests never reach (no class they use asks the chain).
type noChain struct{}

var errNoChain = errors.New("no chain in this test")

func (noChain) BlockNumber(context.Context) (uint64, error) { return 0, errNoChain }
func (noChain) NonceAtBlock(context.Context, common.Address, *big.Int) (uint64, error) {
	return 0, errNoChain
}
func (noChain) BlockByNumber(context.Context, *big.Int) (*types.Block, error) { return nil, errNoChain }
func (noChain) TransactionReceipt(context.Context, common.Hash) (*types.Receipt, error) {
	return nil, errNoChain
}

// backend is one queue backend with the TxSender its services use and a way to flush what was sent in
// transactions (the outbox relay for SQS; nothing for MySQL, whose sends are rows of the transaction).
type backend struct {
	q     queue.Queue
	tx    queue.TxSender
	flush func(t *testing.T)
}

func backends(t *testing.T, st *store.Store) map[string]func(t *testing.T) backend {
	return map[string]func(t *testing.T) backend{
		"mysql": func(t *testing.T) backend {
			q := mysqlq.New(st.DB, mysqlq.Options{})
			return backend{q: q, tx: q, flush: func(*testing.T) {}}
		},
		"sqs": func(t *testing.T) backend {
			q, err := sqsq.New(context.Background(), sqsq.Config{Region: "us-east-1", Endpoint: testenv.SQSEndpoint(t),
				Prefix: testenv.UniqueName(t) + "-", AccessKeyID: "test", SecretAccessKey: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			relay, err := outbox.NewRelay(outbox.RelayDeps{DB: st.DB, Queue: q}, nil, outbox.NopMetrics())
			if err != nil {
				t.Fatal(err)
			}
			return backend{q: q, tx: outbox.Sender{}, flush: func(t *testing.T) {
				if _, err := relay.RelayOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}}
		},
	}
}

func recvOne(t *testing.T, q queue.Queue, name string) queue.Message {
	t.Helper()
	ms, err := q.Receive(context.Background(), name, 1, 30*time.Second, 3*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("receive %s: %d messages (%v), want 1", name, len(ms), err)
	}
	return ms[0]
}

// The drain on both queue backends: a poison message is parked; a signed-tx message dead-lettered
// after a timeout is redriven into its FIFO group; a message the backend itself moved to the DLQ after
// MaxReceiveCount deliveries (no DeadLetter around it) is redriven.
func TestDLQDrainOnBothBackends(t *testing.T) {
	st, _ := testenv.Store(t)
	ctx := context.Background()
	c, err := st.EnsureAPIClient(ctx, "test", "test-key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, mk := range backends(t, st) {
		t.Run(name, func(t *testing.T) {
			b := mk(t)
			alerts := &recAlerts{}
			cfg := config.Chain{Name: "local", ChainID: 31337, Confirmations: 3}
			conf, err := recovery.NewConflictResolver(recovery.ConflictDeps{Store: st, Queue: b.tx, Alerts: alerts,
				Chains: map[string]recovery.ConflictChainDeps{"local": {Config: cfg, Client: noChain{}}}}, nil, recovery.NopConflictMetrics())
			if err != nil {
				t.Fatal(err)
			}
			dr, err := recovery.NewDrainer(recovery.DrainDeps{Store: st, Queue: b.tx, Alerts: alert.Nop{}, Conflicts: conf,
				BackoffBase: time.Millisecond}, nil, recovery.NopDLQMetrics())
			if err != nil {
				t.Fatal(err)
			}

			// Poison.
			if err := b.q.Send(ctx, queue.RequestDLQ, []byte("]]poison"), queue.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			pm := recvOne(t, b.q, queue.RequestDLQ)
			if err := dr.Handle(ctx, queue.RequestDLQ, pm); err != nil {
				t.Fatal(err)
			}
			if a, ok, _ := st.DecisionTaken(ctx, queue.RequestDLQ, pm.ID); !ok || a != recovery.ActionParked {
				t.Fatalf("poison: %q %v, want parked", a, ok)
			}
			if len(alerts.kind("dlq_parked")) != 0 {
				t.Fatal("alerts went to the resolver's notifier, not the drain's")
			}

			// A recorded transaction's signed-tx message, dead-lettered after a timeout.
			from := testenv.NewAccount(t).Address
			var sent store.SentTx
			if err := st.InTx(ctx, func(tx *sql.Tx) error {
				sent = store.SentTx{Chain: "local", ChainID: 31337, From: from.Hex(), Nonce: 0, To: from.Hex(),
					Hash: common.BigToHash(big.NewInt(rand.Int64())).Hex(), Raw: []byte{1}, GasLimit: 21000,
					MaxFeePerGas: big.NewInt(2), MaxPriorityFee: big.NewInt(1), Kind: "withdrawal", Source: "signer"}
				_, err := st.InsertSentTx(ctx, tx, &sent)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			group := queue.GroupID("local", sent.From)
			body, err := queue.NewEnvelope(context.Background(), queue.TypeTxSigned, queue.NewID(), "c", queue.TxSigned{SentTxID: sent.ID, Chain: "local", From: sent.From, Hash: sent.Hash})
			if err != nil {
				t.Fatal(err)
			}
			dl, err := queue.DeadLetterFor(queue.Message{ID: "m-" + queue.NewID(), Body: body, GroupID: group, ReceiveCount: 5}, queue.SignedTx,
				txerr.New(txerr.Timeout, "", errors.New("deadline exceeded")), time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.q.Send(ctx, queue.SignedTxDLQ, dl, queue.SendOptions{GroupID: group}); err != nil {
				t.Fatal(err)
			}
			dm := recvOne(t, b.q, queue.SignedTxDLQ)
			for range 2 { // delivered twice: redriven once
				if err := dr.Handle(ctx, queue.SignedTxDLQ, dm); err != nil {
					t.Fatal(err)
				}
			}
			b.flush(t)
			got := recvOne(t, b.q, queue.SignedTx)
			if !bytes.Equal(got.Body, body) || got.GroupID != group {
				t.Fatalf("redriven %s in group %q, want the original in %q", got.Body, got.GroupID, group)
			}
			if ms, _ := b.q.Receive(ctx, queue.SignedTx, 10, time.Minute, time.Second); len(ms) != 0 {
				t.Fatalf("%d more copies redriven", len(ms))
			}

			// Moved by the backend itself after MaxReceiveCount deliveries.
			wid := queue.NewID()
			if _, _, err := st.CreateWithdrawal(ctx, &store.Withdrawal{ID: wid, ClientID: c.ID, ExternalID: wid, RequestHash: make([]byte, 32),
				Chain: "local", Asset: "POL", To: from.Hex(), Amount: big.NewInt(1), CorrelationID: "c"}, func(*sql.Tx) error { return nil }); err != nil {
				t.Fatal(err)
			}
			req, err := queue.NewEnvelope(context.Background(), queue.TypeWithdrawalRequested, queue.NewID(), "c", queue.WithdrawalRequested{WithdrawalID: wid})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.q.Send(ctx, queue.TxRequest, req, queue.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			// Consumers that die: received, never deleted, until the backend moves it (the emulator counts
			// a release as a receive too, so it may move it sooner).
			for i := 0; ; i++ {
				ms, err := b.q.Receive(ctx, queue.TxRequest, 1, time.Minute, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) == 0 {
					break
				}
				if i >= 2*queue.MaxReceiveCount {
					t.Fatalf("still delivered after %d receives", i)
				}
				if err := b.q.ChangeVisibility(ctx, queue.TxRequest, ms[0], 0); err != nil {
					t.Fatal(err)
				}
			}
			raw := recvOne(t, b.q, queue.RequestDLQ)
			if !bytes.Equal(raw.Body, req) {
				t.Fatalf("backend DLQ body %s, want the original", raw.Body)
			}
			if err := dr.Handle(ctx, queue.RequestDLQ, raw); err != nil {
				t.Fatal(err)
			}
			b.flush(t)
			if again := recvOne(t, b.q, queue.TxRequest); !bytes.Equal(again.Body, req) {
				t.Fatalf("redriven %s, want the original", again.Body)
			}
			if a, _, _ := st.DecisionTaken(ctx, queue.RequestDLQ, raw.ID); a != recovery.ActionRedrive {
				t.Fatalf("decision %q, want redrive", a)
			}
		})
	}
}
