package recovery_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/recovery"
)

// node is the real dev node with what it says of hashes and sends scripted.
type node struct {
	recovery.Chain
	mu      sync.Mutex
	lookup  func(h common.Hash) (pending bool, err error)
	answers []error // answers to successive sends; nil once used up
	sent    []*types.Transaction
}

func (n *node) TransactionByHash(_ context.Context, h common.Hash) (*types.Transaction, bool, error) {
	pending, err := n.lookup(h)
	if err != nil {
		return nil, false, err
	}
	return new(types.Transaction), pending, nil
}

func (n *node) SendTransaction(_ context.Context, tx *types.Transaction) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, tx)
	if len(n.answers) == 0 {
		return nil
	}
	a := n.answers[0]
	n.answers = n.answers[1:]
	return a
}

var (
	unknown = func(common.Hash) (bool, error) { return false, ethereum.NotFound }
	pooled  = func(common.Hash) (bool, error) { return true, nil }
)

// What one stuck transaction gets, by what the node says: the decisions of unstick against a scripted
// node (the store, the keys and the fee market are real).
func TestUnstickDecisions(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	for _, c := range []struct {
		name     string
		lookup   func(common.Hash) (bool, error)
		answers  []error
		want     string
		wantErr  bool
		attempts int // new attempts recorded
		sends    int
		minTip   int64 // the last attempt's tip is at least this (0: not checked)
	}{
		{name: "an attempt is mined: the monitor's", lookup: func(common.Hash) (bool, error) { return false, nil }, want: "skipped"},
		{name: "the node lookup fails: nothing done", lookup: func(common.Hash) (bool, error) { return false, errors.New("connection refused") },
			want: "skipped", wantErr: true},
		{name: "dropped: resent unchanged", lookup: unknown, want: "resent", sends: 1},
		{name: "dropped, resend already known: resent", lookup: unknown, answers: []error{errors.New("already known")}, want: "resent", sends: 1},
		{name: "dropped, nonce since mined: the monitor's", lookup: unknown, answers: []error{errors.New("nonce too low")}, want: "skipped", sends: 1},
		{name: "dropped for its fees: bumped to the tip the node names", lookup: unknown,
			answers: []error{errors.New("transaction gas price below minimum: gas tip cap 1, minimum needed 7000000000")},
			want:    "bumped", attempts: 1, sends: 2, minTip: 7_000_000_000},
		{name: "in the pool: bumped", lookup: pooled, want: "bumped", attempts: 1, sends: 1},
		{name: "bump refused twice: bumped again in the same sweep, at most 3 attempts", lookup: pooled,
			answers: []error{errors.New("replacement transaction underpriced"), errors.New("replacement transaction underpriced"),
				errors.New("replacement transaction underpriced")},
			want: "bumped", attempts: 3, sends: 3},
		{name: "bump sent but the node errs otherwise: recorded, sent later", lookup: pooled, answers: []error{errors.New("connection reset")},
			want: "bumped", attempts: 1, sends: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := sendPaused(t, e, nil)
			n := &node{Chain: e.Client, lookup: c.lookup, answers: c.answers}
			rs := newServiceOn(e, n)
			got, err := rs.UnstickOne(e.Ctx, "local", f.st.ID)
			if got != c.want || (err != nil) != c.wantErr {
				t.Fatalf("%s (%v), want %s (error %v)", got, err, c.want, c.wantErr)
			}
			as := attempts(t, e, f.st.ID)
			if len(as) != 1+c.attempts {
				t.Fatalf("%d attempts, want %d", len(as), 1+c.attempts)
			}
			if len(n.sent) != c.sends {
				t.Fatalf("%d sends, want %d", len(n.sent), c.sends)
			}
			cur, err := e.Store.GetSentTx(e.Ctx, f.st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.sends > 0 && !strings.EqualFold(n.sent[len(n.sent)-1].Hash().Hex(), cur.Hash) {
				t.Fatalf("last send %s, want the current attempt %s", n.sent[len(n.sent)-1].Hash(), cur.Hash)
			}
			if c.minTip > 0 && cur.MaxPriorityFee.Cmp(big.NewInt(c.minTip)) < 0 {
				t.Fatalf("tip %s, want at least %d", cur.MaxPriorityFee, c.minTip)
			}
			if d, err := e.Queue.Depth(e.Ctx, queue.SignedTx); err != nil || d != 0 {
				t.Fatalf("signed-tx depth %d (%v): recovery sends its bumps itself, it queues none", d, err)
			}
			for _, tx := range n.sent {
				if tx.Nonce() != f.st.Nonce {
					t.Fatalf("sent nonce %d, want %d", tx.Nonce(), f.st.Nonce)
				}
			}
		})
	}
}

func newServiceOn(e *pipelinetest.Env, n recovery.Chain) *recovery.Service {
	e.T.Helper()
	s, err := recovery.New(recovery.Deps{Store: e.Store, Queue: e.Queue, Keys: e.Keys, Leases: e.Nonces, Alerts: alert.Nop{},
		Chains: map[string]recovery.ChainDeps{"local": {Config: e.Config, Client: n}}}, e.Log, recovery.NopMetrics())
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}
