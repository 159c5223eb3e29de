package chain_test

import (
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// scripted is a JSON-RPC endpoint on the right chain that gives one scripted error answer (or, with
// code 0, a good answer) to every method but eth_chainId.
type scripted struct {
	srv  *httptest.Server
	code int
	msg  string
	mu   sync.Mutex
	hits map[string]int
}

func newScripted(t *testing.T, code int, msg string) *scripted {
	t.Helper()
	s := &scripted{code: code, msg: msg, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.hits[req.Method]++
	s.mu.Unlock()
	resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
	switch {
	case req.Method == "eth_chainId":
		resp["result"] = "0x7a69"
	case s.code != 0:
		resp["error"] = map[string]any{"code": s.code, "message": s.msg}
	case req.Method == "eth_sendRawTransaction":
		var raw string
		_ = json.Unmarshal(req.Params[0], &raw)
		resp["result"] = crypto.Keccak256Hash(common.FromHex(raw)).Hex()
	default:
		resp["result"] = "0x10"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *scripted) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for m, c := range s.hits {
		if m != "eth_chainId" {
			n += c
		}
	}
	return n
}

func signedTx(t *testing.T) *types.Transaction {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	return types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(chainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(chainID), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9), Gas: 21000, To: &to, Value: big.NewInt(1),
	})
}

// How the client treats a node's answers, decided by txerr: a transient answer fails over without
// counting against the endpoint, a rate limit fails over and counts, "already known" to a send is
// success, and any other answer is returned at once, classified, without touching the next endpoint.
func TestAnswersDecidedByTxerr(t *testing.T) {
	const (
		blockNumber = "eth_blockNumber"
		send        = "eth_sendRawTransaction"
	)
	tests := []struct {
		name      string
		call      string
		code      int
		msg       string
		want      txerr.Type // "" for success
		failover  bool       // the second endpoint answered
		breakerOn bool       // the first endpoint's breaker counted a failure
	}{
		{"header not found fails over", blockNumber, -32000, "header not found", "", true, false},
		{"indexing fails over", blockNumber, -32000, "transaction indexing is in progress", "", true, false},
		{"Infura rate limit", blockNumber, -32005, "daily request count exceeded, request rate limited", "", true, true},
		{"Alchemy rate limit", blockNumber, 429, "Your app has exceeded its compute units per second capacity", "", true, true},
		{"QuickNode rate limit in words", blockNumber, -32000, "15/second request limit reached - reduce calls per second", "", true, true},
		{"revert that mentions a transient text", blockNumber, 3, "execution reverted: header not found", txerr.ExecutionReverted, false, false},
		{"geth already known", send, -32000, "already known", "", false, false},
		{"Hardhat known transaction", send, -32603, "Known transaction: 0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060", "", false, false},
		{"Erigon already exists", send, -32000, "ALREADY_EXISTS: already known", "", false, false},
		{"anvil already imported", send, -32003, "transaction already imported", "", false, false},
		{"nonce too low", send, -32000, "nonce too low: next nonce 5, tx nonce 3", txerr.NonceTooLow, false, false},
		{"Polygon tip floor", send, -32000, "transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000", txerr.GasPriceTooLow, false, false},
		{"tip above fee cap", send, -32000, "max priority fee per gas higher than max fee per gas", txerr.InvalidTransaction, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, second := newScripted(t, tt.code, tt.msg), newScripted(t, 0, "")
			c := dial(t, []string{first.srv.URL, second.srv.URL}, time.Second, chain.WithRounds(1))
			ctx := testCtx(t)
			var err error
			if tt.call == send {
				err = c.SendTransaction(ctx, signedTx(t))
			} else {
				_, err = c.BlockNumber(ctx)
			}
			if tt.want == "" && err != nil {
				t.Fatalf("err %v, want success", err)
			}
			if tt.want != "" && txerr.Classify(err) != tt.want {
				t.Fatalf("err %v (%s), want %s", err, txerr.Classify(err), tt.want)
			}
			if got := second.calls() > 0; got != tt.failover {
				t.Fatalf("second endpoint answered: %v, want %v", got, tt.failover)
			}
			if got := c.Endpoints()[0].ConsecutiveFailures > 0; got != tt.breakerOn {
				t.Fatalf("first endpoint's breaker counted a failure: %v, want %v", got, tt.breakerOn)
			}
			if tt.want == txerr.GasPriceTooLow {
				if tip, ok := txerr.MinTipNeeded(err); !ok || tip.Cmp(big.NewInt(25e9)) != 0 {
					t.Fatalf("min tip %v %v through the client's wrapping", tip, ok)
				}
			}
		})
	}
}
