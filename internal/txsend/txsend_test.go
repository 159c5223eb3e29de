package txsend_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
)

func recorded(t *testing.T, to *common.Address, nonce uint64) *store.SentTx {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	chainID := big.NewInt(137)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce,
		GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 60000, To: to, Value: big.NewInt(5), Data: []byte{0xa9, 0x05, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &store.SentTx{ID: 9, Chain: "polygon", ChainID: 137, From: crypto.PubkeyToAddress(key.PublicKey).Hex(), Nonce: 4,
		Hash: tx.Hash().Hex(), Raw: raw, Kind: "withdrawal", Source: "signer", CorrelationID: "corr-1",
		MaxFeePerGas: tx.GasFeeCap(), MaxPriorityFee: tx.GasTipCap()}
}

// A new attempt is the recorded call at the recorded nonce with only the fees changed.
func TestReplacementOf(t *testing.T) {
	to := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	st := recorded(t, &to, 4)
	f := fees.Fees{MaxFeePerGas: big.NewInt(4e9), MaxPriorityFee: big.NewInt(2e9)}
	c, err := txsend.ReplacementOf(st, f)
	if err != nil {
		t.Fatal(err)
	}
	if c.To != to || c.Value.Int64() != 5 || !bytes.Equal(c.Data, []byte{0xa9, 0x05, 1, 2}) || c.Gas != 60000 ||
		c.From != common.HexToAddress(st.From) || c.ChainID != 137 || c.Chain != "polygon" || c.CorrelationID != "corr-1" {
		t.Fatalf("candidate %+v", c)
	}
	if c.Replaces != st || c.Fees.MaxFeePerGas.Int64() != 4e9 || c.Fees.MaxPriorityFee.Int64() != 2e9 || c.Nonce != nil || c.Lock != nil || c.Record != nil {
		t.Fatalf("candidate %+v: want the fees given, replacing st, nonce taken from it", c)
	}
}

func TestReplacementOfRefuses(t *testing.T) {
	to := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	bad := recorded(t, &to, 4)
	bad.Raw = []byte{1, 2, 3}
	creation := recorded(t, nil, 4)
	moved := recorded(t, &to, 5) // the raw's nonce is not the row's
	for name, st := range map[string]*store.SentTx{"undecodable": bad, "contract creation": creation, "nonce mismatch": moved} {
		if _, err := txsend.ReplacementOf(st, fees.Fees{}); txerr.Classify(err) != txerr.InvalidTransaction || txerr.IsRetryable(err) {
			t.Errorf("%s: %v, want a permanent INVALID_TRANSACTION", name, err)
		}
	}
}

type noKeys struct{ asked *bool }

func (k noKeys) Signer(context.Context, common.Address) (keys.Signer, error) {
	*k.asked = true
	return nil, errors.New("no key here")
}

type noQueue struct{}

func (noQueue) SendTx(context.Context, *sql.Tx, string, []byte, queue.SendOptions) error { return nil }

// A main account signs top-ups (and their approve, and gap fills) only: anything else from it is refused
// as a permanent error before its key is even asked for.
func TestMainAccountSignsTopUpsOnly(t *testing.T) {
	main := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	asked := false
	s, err := txsend.New(txsend.Deps{Store: &store.Store{}, Queue: noQueue{}, Keys: noKeys{&asked},
		MainAccounts: map[string]common.Address{"polygon": main}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"withdrawal", "batch", "sweep", ""} {
		_, err := s.Send(context.Background(), txsend.Candidate{Chain: "polygon", From: main, Kind: kind})
		if txerr.Classify(err) != txerr.InvalidTransaction || !strings.Contains(fmt.Sprint(err), "main account") {
			t.Fatalf("%q from the main account: %v, want a permanent refusal", kind, err)
		}
	}
	if asked {
		t.Fatal("the main account's key was asked for a refused transaction")
	}
	for _, kind := range []string{"top_up", "approve", "nonce_fill"} {
		if _, err := s.Send(context.Background(), txsend.Candidate{Chain: "polygon", From: main, Kind: kind}); err == nil ||
			strings.Contains(err.Error(), "main account") {
			t.Fatalf("%s from the main account: %v, want it let through (to fail later here for want of a key)", kind, err)
		}
	}
	// Another chain's main account is a hot wallet elsewhere only if configured so: not refused here.
	if _, err := s.Send(context.Background(), txsend.Candidate{Chain: "amoy", From: main, Kind: "withdrawal"}); err != nil &&
		strings.Contains(err.Error(), "main account") {
		t.Fatalf("withdrawal on another chain refused: %v", err)
	}
}
