package monitor

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// fakeChain is a node as the monitor sees it: receipts by hash, a head, and the canonical header of
// each block number. Everything it is not told about is NotFound.
type fakeChain struct {
	receipts   map[common.Hash]*types.Receipt
	receiptErr error // for every lookup, when set
	head       uint64
	headErr    error
	canonical  map[uint64]*types.Header
	headerErr  error
	finalized  *types.Header // the node's `finalized` block; NotFound when nil
	finalErr   error
	sent       []*types.Transaction
	sendErr    error
}

func (f *fakeChain) BlockNumber(context.Context) (uint64, error) { return f.head, f.headErr }

func (f *fakeChain) HeaderByNumber(_ context.Context, n *big.Int) (*types.Header, error) {
	if n.Sign() < 0 {
		if n.Int64() != int64(rpc.FinalizedBlockNumber) {
			return nil, fmt.Errorf("fake chain: block tag %d not served", n.Int64())
		}
		if f.finalErr != nil {
			return nil, f.finalErr
		}
		if f.finalized == nil {
			return nil, ethereum.NotFound
		}
		return f.finalized, nil
	}
	if f.headerErr != nil {
		return nil, f.headerErr
	}
	if h, ok := f.canonical[n.Uint64()]; ok {
		return h, nil
	}
	return nil, ethereum.NotFound
}

func (f *fakeChain) TransactionReceipt(_ context.Context, h common.Hash) (*types.Receipt, error) {
	if f.receiptErr != nil {
		return nil, f.receiptErr
	}
	if r, ok := f.receipts[h]; ok {
		return r, nil
	}
	return nil, ethereum.NotFound
}

func (f *fakeChain) SendTransaction(_ context.Context, tx *types.Transaction) error {
	f.sent = append(f.sent, tx)
	return f.sendErr
}

// header is the canonical header of block n on a chain named by fork ("a", "b"…): two forks give the
// same height two different hashes.
func header(n uint64, fork string) *types.Header {
	return &types.Header{Number: new(big.Int).SetUint64(n), Extra: []byte(fork), Difficulty: big.NewInt(0)}
}

func receipt(hash common.Hash, in *types.Header, status uint64) *types.Receipt {
	return &types.Receipt{TxHash: hash, BlockNumber: new(big.Int).Set(in.Number), BlockHash: in.Hash(), Status: status}
}

var (
	first  = common.HexToHash("0x01") // the first attempt
	bumped = common.HexToHash("0x02") // its fee-bumped replacement
)

// TestDecide covers what the monitor does with a broadcast transaction for each answer a node can
// give: found at depth, below depth, in a block reorged away, not found (dropped), the replacement
// mined instead of the first attempt, and the node failing.
func TestDecide(t *testing.T) {
	const confs, blockTime = 12, 2 * time.Second
	boom := errors.New("connection refused")
	at100 := header(100, "a")
	tests := []struct {
		name      string
		chain     fakeChain
		hashes    []string
		finalized bool // the chain's finality is `finalized`
		want      action
		wantConfs uint64
		wantDelay time.Duration
		wantBlock *types.Header // the receipt's block, when one is found
		wantErr   bool
	}{
		{name: "at depth in a canonical block: settle",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100}},
			hashes: []string{first.Hex()}, want: settle, wantConfs: 21, wantBlock: at100},
		{name: "exactly at depth: settle",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 111, canonical: map[uint64]*types.Header{100: at100}},
			hashes: []string{first.Hex()}, want: settle, wantConfs: 12, wantBlock: at100},
		{name: "reverted at depth: settle (the receipt decides FAILED)",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 0)}, head: 130, canonical: map[uint64]*types.Header{100: at100}},
			hashes: []string{first.Hex()}, want: settle, wantConfs: 31, wantBlock: at100},
		{name: "one block short of depth: wait one block",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 110},
			hashes: []string{first.Hex()}, want: waitDepth, wantConfs: 11, wantDelay: blockTime, wantBlock: at100},
		{name: "just mined: wait for the remaining blocks",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 100},
			hashes: []string{first.Hex()}, want: waitDepth, wantConfs: 1, wantDelay: 11 * blockTime, wantBlock: at100},
		{name: "head behind the receipt's block (lagging node): wait the full depth",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 98},
			hashes: []string{first.Hex()}, want: waitDepth, wantConfs: 0, wantDelay: 12 * blockTime, wantBlock: at100},
		{name: "at depth but the block was reorged away: wait, settle nothing",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: header(100, "b")}},
			hashes: []string{first.Hex()}, want: waitReorg, wantConfs: 21, wantDelay: blockTime, wantBlock: at100},
		{name: "no receipt for any attempt (dropped or still pooled): resend and wait a block",
			chain:  fakeChain{head: 120},
			hashes: []string{first.Hex(), bumped.Hex()}, want: resendAndWait, wantDelay: blockTime},
		{name: "the fee-bumped replacement was mined: settle on it",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{bumped: receipt(bumped, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100}},
			hashes: []string{first.Hex(), bumped.Hex()}, want: settle, wantConfs: 21, wantBlock: at100},
		{name: "receipt lookup fails: error, decide nothing",
			chain:  fakeChain{receiptErr: boom},
			hashes: []string{first.Hex()}, wantErr: true},
		{name: "head lookup fails: error",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, headErr: boom},
			hashes: []string{first.Hex()}, wantErr: true},
		{name: "finality finalized, node finalized past the block: settle",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100},
				finalized: header(104, "a")},
			hashes: []string{first.Hex()}, finalized: true, want: settle, wantConfs: 21, wantBlock: at100},
		{name: "finality finalized, node finalized exactly the block: settle",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100},
				finalized: header(100, "a")},
			hashes: []string{first.Hex()}, finalized: true, want: settle, wantConfs: 21, wantBlock: at100},
		{name: "finality finalized, at depth but not yet finalized: wait a block",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100},
				finalized: header(99, "a")},
			hashes: []string{first.Hex()}, finalized: true, want: waitFinalized, wantConfs: 21, wantDelay: blockTime, wantBlock: at100},
		{name: "finality finalized, finalized past the block but below depth: the depth still rules",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 105, canonical: map[uint64]*types.Header{100: at100},
				finalized: header(101, "a")},
			hashes: []string{first.Hex()}, finalized: true, want: waitDepth, wantConfs: 6, wantDelay: 6 * blockTime, wantBlock: at100},
		{name: "finality finalized, block reorged away: wait for the reorg, not finality",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: header(100, "b")},
				finalized: header(110, "b")},
			hashes: []string{first.Hex()}, finalized: true, want: waitReorg, wantConfs: 21, wantDelay: blockTime, wantBlock: at100},
		{name: "finality finalized, the node has no finalized block: error, never settle",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100}},
			hashes: []string{first.Hex()}, finalized: true, wantErr: true},
		{name: "finality finalized, finalized lookup fails: error",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100},
				finalErr: boom},
			hashes: []string{first.Hex()}, finalized: true, wantErr: true},
		{name: "finality depth ignores the finalized block: settle",
			chain: fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, canonical: map[uint64]*types.Header{100: at100},
				finalized: header(3, "a")},
			hashes: []string{first.Hex()}, want: settle, wantConfs: 21, wantBlock: at100},
		{name: "header lookup fails at depth: error, never settle unchecked",
			chain:  fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, at100, 1)}, head: 120, headerErr: boom},
			hashes: []string{first.Hex()}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decide(context.Background(), &tc.chain, tc.hashes, rule{confirmations: confs, blockTime: blockTime, finalized: tc.finalized})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("decided %v, want an error", v.action)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.action != tc.want || v.confs != tc.wantConfs || v.delay != tc.wantDelay {
				t.Fatalf("got %v confs %d delay %s, want %v confs %d delay %s", v.action, v.confs, v.delay, tc.want, tc.wantConfs, tc.wantDelay)
			}
			switch {
			case tc.wantBlock == nil && v.receipt != nil:
				t.Fatalf("receipt %+v, want none", v.receipt)
			case tc.wantBlock != nil && (v.receipt == nil || v.receipt.BlockHash != tc.wantBlock.Hash()):
				t.Fatalf("receipt %+v, want one in block %s", v.receipt, tc.wantBlock.Hash())
			}
			if len(tc.chain.sent) != 0 {
				t.Fatalf("decide sent %d transactions: it only reads", len(tc.chain.sent))
			}
		})
	}
}

// A reorg followed end to end: the node first still reports the old block, then forgets the
// transaction (it is resent), then mines it again in the new fork, where it settles.
func TestDecideFollowsAReorg(t *testing.T) {
	const confs, blockTime = 3, time.Second
	old, replaced := header(50, "a"), header(50, "b")
	moved := header(51, "b")
	c := &fakeChain{receipts: map[common.Hash]*types.Receipt{first: receipt(first, old, 1)}, head: 53,
		canonical: map[uint64]*types.Header{50: replaced, 51: moved}}
	hashes := []string{first.Hex()}
	step := func(want action) verdict {
		t.Helper()
		v, err := decide(context.Background(), c, hashes, rule{confirmations: confs, blockTime: blockTime})
		if err != nil || v.action != want {
			t.Fatalf("got %v (%v), want %v", v.action, err, want)
		}
		return v
	}
	step(waitReorg)
	delete(c.receipts, first) // the node caught up: the tx is back in its pool or gone
	step(resendAndWait)
	c.receipts[first] = receipt(first, moved, 1)
	if v := step(settle); v.receipt.BlockNumber.Uint64() != 51 || v.confs != 3 {
		t.Fatalf("settled on block %d with %d confirmations, want block 51 with 3", v.receipt.BlockNumber, v.confs)
	}
}

// resend puts the recorded bytes back on the node as they are (same hash, so never a second payment),
// ignores the node's answer ("already known", "nonce too low"), and sends nothing it cannot decode.
func TestResend(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, hash := signedRaw(t, key)
	log := slog.New(slog.DiscardHandler)
	for _, nodeErr := range []error{nil, errors.New("already known"), errors.New("nonce too low")} {
		c := &fakeChain{sendErr: nodeErr}
		resend(context.Background(), log, c, &store.SentTx{ID: 1, Raw: raw})
		if len(c.sent) != 1 || c.sent[0].Hash() != hash {
			t.Fatalf("node answering %v: sent %d, want the recorded tx %s once", nodeErr, len(c.sent), hash)
		}
	}
	c := &fakeChain{}
	resend(context.Background(), log, c, &store.SentTx{ID: 2, Raw: []byte{0x02, 0xff}})
	if len(c.sent) != 0 {
		t.Fatalf("sent %d transactions from undecodable bytes", len(c.sent))
	}
}

func signedRaw(t *testing.T, key *ecdsa.PrivateKey) ([]byte, common.Hash) {
	t.Helper()
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	chainID := big.NewInt(1337)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 7, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw, tx.Hash()
}

// TestWithdrawalOutcome covers the settling rules of one withdrawal of a transaction final at depth.
func TestWithdrawalOutcome(t *testing.T) {
	tests := []struct {
		name                            string
		receiptOK, inBatch, itemReverts bool
		returns                         int
		want                            outcome
	}{
		{"single transfer mined", true, false, false, 0, confirmed},
		{"batch mined, its item paid", true, true, false, 0, confirmed},
		{"ERC-20 batch mined, its own item reverted", true, true, true, 0, failed},
		{"single transfer reverted", false, false, false, 0, failed},
		{"batch reverted, first time: back to pending", false, true, false, 0, repended},
		{"batch reverted, second time: back to pending", false, true, false, maxBatchReturns - 1, repended},
		{"batch reverted once more than allowed: failed", false, true, false, maxBatchReturns, failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := withdrawalOutcome(tc.receiptOK, tc.inBatch, tc.itemReverts, tc.returns); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// New refuses to build a monitor without a collaborator, naming it, instead of panicking later.
func TestNewNamesMissingDependency(t *testing.T) {
	full := Deps{Store: &store.Store{}, Queue: fakeQueue{}, Chains: map[string]ChainDeps{"local": {Client: &fakeChain{}}}}
	for want, drop := range map[string]func(*Deps){
		"Store":  func(d *Deps) { d.Store = nil },
		"Queue":  func(d *Deps) { d.Queue = nil },
		"Chains": func(d *Deps) { d.Chains = nil },
		`"local"`: func(d *Deps) {
			d.Chains = map[string]ChainDeps{"local": {}}
		},
	} {
		d := full
		drop(&d)
		if _, err := New(d, nil, NopMetrics()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: %v, want an error naming it", want, err)
		}
	}
	if _, err := New(full, nil, nil); err == nil || !strings.Contains(err.Error(), "Metrics") {
		t.Errorf("without Metrics: %v", err)
	}
	if _, err := New(full, nil, NopMetrics()); err != nil {
		t.Errorf("complete deps and a nil log: %v", err)
	}
}

// fakeQueue stands in for the queue where only its presence matters.
type fakeQueue struct{ queue.Queue }
