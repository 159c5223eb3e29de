package broadcaster

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// fakeChain answers a send with sendErr and finds the transactions in known.
type fakeChain struct {
	sendErr   error
	known     map[common.Hash]bool
	lookupErr error
	lookups   int
}

func (f *fakeChain) SendTransaction(context.Context, *types.Transaction) error { return f.sendErr }

func (f *fakeChain) TransactionByHash(_ context.Context, h common.Hash) (*types.Transaction, bool, error) {
	f.lookups++
	if f.lookupErr != nil {
		return nil, false, f.lookupErr
	}
	if f.known[h] {
		return new(types.Transaction), false, nil
	}
	return nil, false, ethereum.NotFound
}

// answer is a node's answer as the chain client returns it: classified and wrapped.
func answer(msg string) error {
	err := errors.New(msg)
	return txerr.New(txerr.Classify(err), "rpc-32000", fmt.Errorf("polygon eth_sendRawTransaction: %w", err))
}

// The broadcaster's decisions on a node's answer to a send, without a node or a database.
func TestSendDecisions(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	tx := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(137)), &types.DynamicFeeTx{
		ChainID: big.NewInt(137), Nonce: 3, GasTipCap: big.NewInt(30e9), GasFeeCap: big.NewInt(100e9), Gas: 21000, To: &to, Value: big.NewInt(1),
	})
	earlier := common.HexToHash("0x1111111111111111111111111111111111111111111111111111111111111111")
	ours := []string{tx.Hash().Hex(), earlier.Hex()}
	dbDown := errors.New("attempts of 7: driver: bad connection")
	nonceTooLow := answer("nonce too low: next nonce 4, tx nonce 3")

	tests := []struct {
		name        string
		chain       *fakeChain
		attempts    []string
		attemptsErr error
		want        txerr.Type // "" for success
		code        string     // checked when set
		retryable   bool
		wantErr     error // errors.Is, when set
	}{
		{name: "sent", chain: &fakeChain{}},
		{name: "geth already known", chain: &fakeChain{sendErr: answer("already known")}},
		{name: "Hardhat known transaction", chain: &fakeChain{sendErr: errors.New("Known transaction: " + tx.Hash().Hex())}},
		{name: "Erigon already exists", chain: &fakeChain{sendErr: answer("ALREADY_EXISTS: already known")}},
		{name: "nonce too low, an earlier attempt of ours mined", chain: &fakeChain{sendErr: nonceTooLow, known: map[common.Hash]bool{earlier: true}}, attempts: ours},
		{name: "nonce too low, this attempt mined", chain: &fakeChain{sendErr: nonceTooLow, known: map[common.Hash]bool{tx.Hash(): true}}, attempts: ours},
		{name: "nonce too low, none of ours", chain: &fakeChain{sendErr: nonceTooLow}, attempts: ours,
			want: txerr.InvalidTransaction, code: "nonce_conflict"},
		{name: "nonce too low, no attempt recorded", chain: &fakeChain{sendErr: nonceTooLow},
			want: txerr.InvalidTransaction, code: "nonce_conflict"},
		{name: "nonce too low, lookup fails", chain: &fakeChain{sendErr: nonceTooLow, lookupErr: answer("503 Service Unavailable")}, attempts: ours,
			want: txerr.Network, retryable: true},
		{name: "nonce too low, attempts unreadable", chain: &fakeChain{sendErr: nonceTooLow}, attemptsErr: dbDown,
			want: txerr.Unknown, wantErr: dbDown},
		{name: "network", chain: &fakeChain{sendErr: txerr.New(txerr.Network, "all_endpoints_failed", errors.New("dial tcp: connect: connection refused"))},
			want: txerr.Network, retryable: true},
		{name: "timeout", chain: &fakeChain{sendErr: fmt.Errorf("send: %w", context.DeadlineExceeded)}, want: txerr.Timeout, retryable: true},
		{name: "underpriced", chain: &fakeChain{sendErr: answer("transaction underpriced")}, want: txerr.GasPriceTooLow, retryable: true},
		{name: "Polygon tip floor", chain: &fakeChain{sendErr: answer("transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000")},
			want: txerr.GasPriceTooLow, retryable: true},
		{name: "replacement underpriced", chain: &fakeChain{sendErr: answer("replacement transaction underpriced")}, want: txerr.ReplacementUnderpriced, retryable: true},
		{name: "insufficient funds", chain: &fakeChain{sendErr: answer("insufficient funds for gas * price + value: balance 0, tx cost 1, overshot 1")},
			want: txerr.InsufficientFunds},
		{name: "tip above fee cap", chain: &fakeChain{sendErr: answer("max priority fee per gas higher than max fee per gas")}, want: txerr.InvalidTransaction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := 0
			st := &store.SentTx{ID: 7, Nonce: 3, From: "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"}
			err := sendDecision(context.Background(), tt.chain, st, tx, func(context.Context) ([]string, error) {
				read++
				return tt.attempts, tt.attemptsErr
			})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v, want success", err)
				}
			} else if got := txerr.Classify(err); got != tt.want {
				t.Fatalf("err %v (%s), want %s", err, got, tt.want)
			}
			// A store error is left to the consumer's retries: only its cause is checked.
			if tt.want != "" && tt.wantErr == nil && txerr.IsRetryable(err) != tt.retryable {
				t.Fatalf("retryable %v, want %v (%v)", txerr.IsRetryable(err), tt.retryable, err)
			}
			if tt.code != "" && txerr.CodeOf(err) != tt.code {
				t.Fatalf("code %s, want %s", txerr.CodeOf(err), tt.code)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v does not wrap %v", err, tt.wantErr)
			}
			// The attempts are read only to settle a nonce too low.
			if wantRead := errors.Is(tt.chain.sendErr, nonceTooLow); (read > 0) != wantRead {
				t.Fatalf("attempts read %d times", read)
			}
			if tt.want == txerr.GasPriceTooLow && tt.name == "Polygon tip floor" {
				if tip, ok := txerr.MinTipNeeded(err); !ok || tip.Cmp(big.NewInt(25e9)) != 0 {
					t.Fatalf("min tip %v %v through the broadcaster's wrapping", tip, ok)
				}
			}
		})
	}
}
