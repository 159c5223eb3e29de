package txerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/rpc"
)

// sample is a real answer: the text a node or provider sends, the class it must get, and who sends it.
type sample struct {
	msg  string
	want Type
	from string
}

// samples hold at least one real message for every row of the table (TestEveryRowHasARealMessage
// checks that) and for every class.
var samples = []sample{
	// Reverts, whatever the reason says.
	{"execution reverted: ERC20: transfer amount exceeds balance", ExecutionReverted, "geth"},
	{"VM Exception while processing transaction: reverted with reason string 'insufficient funds'", ExecutionReverted, "Hardhat"},
	{"Transaction reverted without a reason string", ExecutionReverted, "Hardhat"},
	{"execution reverted: already known", ExecutionReverted, "geth, a revert reason that reads like a pool answer"},

	// The node has it.
	{"already known", AlreadyKnown, "geth, bor"},
	{"ALREADY_EXISTS: already known", AlreadyKnown, "Erigon"},
	{"Known transaction: 0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060", AlreadyKnown, "Hardhat/EDR"},
	{"transaction already imported", AlreadyKnown, "anvil"},
	{"Transaction with the same hash was already imported.", AlreadyKnown, "Parity"},
	{"INVALID: existing txn with same hash", AlreadyKnown, "Erigon"},
	{"AlreadyKnown", AlreadyKnown, "Nethermind"},

	// Nonces.
	{"nonce too low: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, tx: 3 state: 5", NonceTooLow, "geth state transition"},
	{"nonce too low: next nonce 5, tx nonce 3", NonceTooLow, "geth, bor txpool"},
	{"Nonce too low. Expected nonce to be 1 but got 0.", NonceTooLow, "Hardhat"},
	{"INVALID: nonce too low", NonceTooLow, "Erigon"},
	{"OldNonce, Current nonce: 22, nonce of rejected tx: 17", NonceTooLow, "Nethermind"},
	{"nonce too high: tx nonce 9, gapped nonce 2", NonceTooHigh, "geth, bor txpool"},
	{"Nonce too high. Expected nonce to be 2 but got 9. Note that transactions can't be queued when automining.", NonceTooHigh, "Hardhat"},
	{"NonceGap, Future nonce. Expected nonce: 10", NonceTooHigh, "Nethermind"},
	{"nonce has max value: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, nonce: 18446744073709551615", InvalidTransaction, "geth"},

	// Fees.
	{"replacement transaction underpriced", ReplacementUnderpriced, "geth, bor, anvil"},
	{"Replacement transaction underpriced. A gasPrice/maxFeePerGas of at least 2000000000 is necessary to replace the existing transaction with nonce 0.", ReplacementUnderpriced, "Hardhat/EDR"},
	{"FEE_TOO_LOW: replacement transaction underpriced", ReplacementUnderpriced, "Erigon"},
	{"INVALID: could not replace existing tx", ReplacementUnderpriced, "Erigon"},
	{"max priority fee per gas higher than max fee per gas: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, maxPriorityFeePerGas: 3, maxFeePerGas: 2", InvalidTransaction, "geth"},
	{"max priority fee per gas higher than 2^256-1: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, maxPriorityFeePerGas bit length: 257", InvalidTransaction, "geth"},
	{"max fee per gas higher than 2^256-1: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, maxFeePerGas bit length: 257", InvalidTransaction, "geth"},
	{"transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000", GasPriceTooLow, "bor (Polygon's 25 gwei floor), geth ≥1.14"},
	{"transaction underpriced: gas tip cap 1000000000, minimum needed 25000000000", GasPriceTooLow, "bor on geth 1.13"},
	{"gas tip cap 1000000000, minimum needed 25000000000", GasPriceTooLow, "Polygon, as the provider passes it on"},
	{"transaction underpriced", GasPriceTooLow, "geth, bor: pool full of better-paying transactions"},
	{"max fee per gas less than block base fee: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, maxFeePerGas: 1000000000, baseFee: 7000000000", GasPriceTooLow, "geth, anvil"},
	{"fee cap less than base fee", GasPriceTooLow, "geth core/types"},
	{"Transaction maxFeePerGas (200000000) is too low for the next block, which has a baseFeePerGas of 264952691", GasPriceTooLow, "Hardhat"},
	{"FEE_TOO_LOW: fee too low", GasPriceTooLow, "Erigon"},
	{"FeeTooLow, MaxFeePerGas too low. MaxFeePerGas: 50, BaseFee: 100, MaxPriorityFeePerGas:200, Block number: 5", GasPriceTooLow, "Nethermind"},
	{"FEE_TOO_LOW: underpriced", GasPriceTooLow, "Erigon"},
	{"gas price too low", GasPriceTooLow, "Arbitrum"},

	// Funds.
	{"insufficient funds for gas * price + value: balance 0, tx cost 21000000000000, overshot 21000000000000", InsufficientFunds, "geth, bor txpool"},
	{"insufficient funds for transfer: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F", InsufficientFunds, "geth"},
	{"insufficient balance for transfer", InsufficientFunds, "geth vm"},
	{"INVALID: insufficient funds", InsufficientFunds, "Erigon"},
	{"InsufficientFunds, Account balance: 4740799397601480913, cumulative cost: 22019342038993800000", InsufficientFunds, "Nethermind"},
	{"Sender doesn't have enough funds to send tx. The max upfront cost is: 2100000000000000 and the sender's balance is: 0.", InsufficientFunds, "Hardhat/EDR"},

	// Gas.
	{"intrinsic gas too low: gas 21000, minimum needed 21064", OutOfGas, "geth, bor"},
	{"insufficient gas for floor data gas cost: gas 21000, minimum needed 21640", OutOfGas, "geth, bor (EIP-7623)"},
	{"INVALID: IntrinsicGas", OutOfGas, "Erigon"},
	{"Transaction requires at least 21000 gas but got 0", OutOfGas, "Hardhat"},
	{"gas required exceeds allowance (30000000)", OutOfGas, "geth eth_estimateGas"},
	{"out of gas", OutOfGas, "geth vm"},

	// Invalid.
	{"transaction gas limit too high (cap: 16777216, tx: 30000000)", InvalidTransaction, "geth, bor"},
	{"exceeds block gas limit", InvalidTransaction, "geth"},
	{"Transaction gas limit is 40000000 and exceeds block gas limit of 30000000", InvalidTransaction, "Hardhat/EDR"},
	{"oversized data: transaction size 131200, limit 131072", InvalidTransaction, "geth"},
	{"invalid sender: invalid transaction v, r, s values", InvalidTransaction, "geth"},
	{"negative value", InvalidTransaction, "geth, Erigon"},
	{"sender not an eoa: address 0x71C7656EC7ab88b098defB751B7401B5f6d8976F, len(code): 23", InvalidTransaction, "geth"},
	{"invalid transaction v, r, s values", InvalidTransaction, "geth"},
	{"invalid chain id for signer: have 1 want 137", InvalidTransaction, "geth"},
	{"invalid chain id, expected: 137 got: 1", InvalidTransaction, "Erigon"},
	{"transaction type not supported: tx type 3 not supported by this pool", InvalidTransaction, "geth"},
	{"only replay-protected (EIP-155) transactions allowed over RPC", InvalidTransaction, "geth"},
	{"rlp: expected input list for types.LegacyTx", InvalidTransaction, "geth"},
	{"typed transaction too short", InvalidTransaction, "geth"},

	// Pool full.
	{"txpool is full", Network, "geth"},
	{"account limit exceeded: pooled 16 txs", Network, "geth"},
	{"INVALID: pending sub-pool is full", Network, "Erigon"},

	// Transient node state.
	{"header not found", Network, "geth; Infura, Alchemy behind a lagging node"},
	{"missing trie node 8d2c3f1e1b3a7d4c2e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70812 (path ) state 0x8d2c is not available", Network, "geth"},
	{"transaction indexing is in progress", Network, "geth"},
	{"request timed out", Timeout, "geth rpc server (-32002)"},

	// Rate limits.
	{"Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message.", Network, "Alchemy"},
	{"15/second request limit reached - reduce calls per second or upgrade your account at quicknode.com", Network, "QuickNode"},
	{"daily request count exceeded, request rate limited", Network, "Infura"},
	{"project ID request rate exceeded", Network, "Infura"},
	{"429 Too Many Requests", Network, "go-ethereum rpc.HTTPError text (the status line, no body)"},

	// HTTP statuses in words.
	{"502 Bad Gateway: <html><head><title>502 Bad Gateway</title></head></html>", Network, "load balancer"},
	{"503 Service Unavailable", Network, "go-ethereum rpc.HTTPError text"},
	{"503 Service Temporarily Unavailable", Network, "nginx"},
	{"504 Gateway Timeout", Network, "go-ethereum rpc.HTTPError text"},

	// Transport.
	{`Post "https://polygon-rpc.com": dial tcp 127.0.0.1:8545: connect: connection refused`, Network, "Go net"},
	{"read tcp 10.0.0.2:51234->10.0.0.1:443: read: connection reset by peer", Network, "Go net"},
	{"write tcp 10.0.0.2:51234->10.0.0.1:443: write: broken pipe", Network, "Go net"},
	{`Post "https://polygon-rpc.com": unexpected EOF`, Network, "Go net/http"},
	{"dial tcp: lookup rpc.example.org: no such host", Network, "Go net"},
	{"dial tcp 10.0.0.1:443: connect: network is unreachable", Network, "Go net"},
	{"skipped: circuit breaker is open", Network, "gobreaker through internal/chain"},
	{"context deadline exceeded", Timeout, "Go context, as text"},
	{"read tcp 10.0.0.2:51234->10.0.0.1:443: i/o timeout", Timeout, "Go net"},
	{"upstream timed out", Timeout, "nginx"},

	// Unknown: permanent until someone looks.
	{"something nobody has seen", Unknown, "-"},
	{"unknown transaction type", Unknown, "not 'known transaction': words match from their start"},
}

func TestClassifyRealMessages(t *testing.T) {
	for _, s := range samples {
		t.Run(s.msg, func(t *testing.T) {
			if got := Classify(errors.New(s.msg)); got != s.want {
				t.Fatalf("Classify(%q) from %s = %s, want %s", s.msg, s.from, got, s.want)
			}
			// The same text inside go-ethereum's JSON-RPC error and wrapped by our chain client.
			wrapped := fmt.Errorf("polygon eth_sendRawTransaction: %w", rpcError{code: -32000, msg: s.msg})
			if got := Classify(wrapped); got != s.want {
				t.Fatalf("Classify(%q) wrapped = %s, want %s", wrapped, got, s.want)
			}
		})
	}
}

// Every row of the table is there because a real node or provider sends its text: each must be hit by
// at least one sample, and every class by at least one sample.
func TestEveryRowHasARealMessage(t *testing.T) {
	hit := make([]bool, len(rows))
	classes := map[Type]bool{}
	for _, s := range samples {
		classes[s.want] = true
		if r := match(s.msg); r != nil {
			for i := range rows {
				if r == &rows[i] {
					hit[i] = true
				}
			}
		}
	}
	for i, r := range rows {
		if r.source == "" {
			t.Errorf("row %q has no source", r.text)
		}
		if !hit[i] {
			t.Errorf("row %q (%s) has no real message in samples", r.text, r.typ)
		}
		if r.kind != plain && !r.typ.Retryable() {
			t.Errorf("row %q is transient or rate-limited but %s is permanent", r.text, r.typ)
		}
	}
	for _, c := range []Type{InsufficientFunds, InvalidTransaction, ExecutionReverted, Unknown, Network, Timeout,
		NonceTooLow, NonceTooHigh, GasPriceTooLow, ReplacementUnderpriced, OutOfGas, AlreadyKnown} {
		if !classes[c] {
			t.Errorf("class %s has no real message in samples", c)
		}
	}
}

// go-ethereum's own values classify through any wrapping, whatever the surrounding text says.
func TestGoEthereumValues(t *testing.T) {
	if got := Classify(fmt.Errorf("send 0xabc: %w", core.ErrNonceTooLow)); got != NonceTooLow {
		t.Fatalf("wrapped core.ErrNonceTooLow: %s", got)
	}
	n := 0
	for _, r := range rows {
		if r.err == nil {
			continue
		}
		n++
		if got := Classify(fmt.Errorf("pool: %w", r.err)); got != r.typ {
			t.Errorf("wrapped %v: %s, want %s", r.err, got, r.typ)
		}
		// A value under a text that says nothing: errors.Is, not the message, decides.
		if got := Classify(opaque{r.err}); got != r.typ {
			t.Errorf("opaque %v: %s, want %s", r.err, got, r.typ)
		}
		if r.text != r.err.Error() && r.text != lower(r.err.Error()) {
			t.Errorf("row text %q is not its value's text %q", r.text, r.err.Error())
		}
	}
	if n < 20 {
		t.Fatalf("only %d go-ethereum values in the table", n)
	}
	if got := Classify(opaque{txpool.ErrUnderpriced}); got != GasPriceTooLow {
		t.Fatalf("opaque underpriced: %s", got)
	}
}

// HTTP statuses count only as statuses (go-ethereum's rpc.HTTPError) or as status lines in words;
// digits elsewhere in a message (an address, an amount, a nonce) never make an error NETWORK.
func TestHTTPStatusesAndFalseDigits(t *testing.T) {
	status := func(code int, status, body string) rpc.HTTPError {
		return rpc.HTTPError{StatusCode: code, Status: status, Body: []byte(body)}
	}
	tests := []struct {
		name        string
		err         error
		want        Type
		rateLimited bool
	}{
		{"429 value", status(429, "429 Too Many Requests", ""), Network, true},
		{"429 pointer", &rpc.HTTPError{StatusCode: 429, Status: "429 Too Many Requests"}, Network, true},
		{"502 wrapped", fmt.Errorf("eth_call: %w", status(502, "502 Bad Gateway", "")), Network, false},
		{"503", status(503, "503 Service Unavailable", "upstream connect error"), Network, false},
		{"504", status(504, "504 Gateway Timeout", ""), Network, false},
		{"408", status(408, "408 Request Timeout", ""), Timeout, false},
		{"400 whose body has 429", status(400, "400 Bad Request", "amount 429 is not a valid quantity"), Unknown, false},
		{"JSON-RPC -32005", rpcError{code: -32005, msg: "limit exceeded"}, Network, true},
		{"JSON-RPC 429 from Alchemy", rpcError{code: 429, msg: "Your app has exceeded its compute units per second capacity"}, Network, true},
		{"JSON-RPC -32000 is not a rate limit", rpcError{code: -32000, msg: "header not found"}, Network, false},
		{"address with 429", errors.New("transfer to 0x00000000000000000000000000000000004290a1 refused by policy"), Unknown, false},
		{"address with 502, 503, 504", errors.New("sender 0x5020503050400000000000000000000000000000 is frozen"), Unknown, false},
		{"amount 5030", errors.New("amount 5030 exceeds the daily cap"), Unknown, false},
		{"nonce 504", errors.New("nonce 504 of 0x71C7656EC7ab88b098defB751B7401B5f6d8976F is reserved"), Unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
			}
			if got := IsRateLimited(tt.err); got != tt.rateLimited {
				t.Fatalf("IsRateLimited(%v) = %v, want %v", tt.err, got, tt.rateLimited)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	tests := []struct {
		err                               error
		alreadyKnown, transient, rateLimt bool
	}{
		{errors.New("already known"), true, false, false},
		{fmt.Errorf("send: %w", txpool.ErrAlreadyKnown), true, false, false},
		{errors.New("Known transaction: 0x5c50"), true, false, false},
		{errors.New("execution reverted: already known"), false, false, false},
		{errors.New("unknown transaction type"), false, false, false},
		{errors.New("header not found"), false, true, false},
		{errors.New("missing trie node 8d2c (path ) state is not available"), false, true, false},
		{errors.New("transaction indexing is in progress"), false, true, false},
		{errors.New("request timed out"), false, true, false},
		{errors.New("nonce too low"), false, false, false},
		{errors.New("daily request count exceeded, request rate limited"), false, false, true},
		{errors.New("15/second request limit reached - reduce calls per second"), false, false, true},
		{errors.New("Your app has exceeded its compute units per second capacity"), false, false, true},
		{errors.New("429 Too Many Requests"), false, false, true},
		{nil, false, false, false},
	}
	for _, tt := range tests {
		if got := IsAlreadyKnown(tt.err); got != tt.alreadyKnown {
			t.Errorf("IsAlreadyKnown(%v) = %v", tt.err, got)
		}
		if got := IsTransient(tt.err); got != tt.transient {
			t.Errorf("IsTransient(%v) = %v", tt.err, got)
		}
		if got := IsRateLimited(tt.err); got != tt.rateLimt {
			t.Errorf("IsRateLimited(%v) = %v", tt.err, got)
		}
		if (tt.transient || tt.rateLimt || tt.alreadyKnown) && !IsRetryable(tt.err) {
			t.Errorf("%v must be retryable", tt.err)
		}
	}
}

func TestClassifyPrecedence(t *testing.T) {
	tests := []struct {
		err  error
		want Type
	}{
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), Network},
		{context.DeadlineExceeded, Timeout},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), Timeout},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, Network},
		{New(NonceTooHigh, "x", errors.New("execution reverted")), NonceTooHigh}, // explicit wins over text
		{New(Network, "x", core.ErrInsufficientFunds), Network},                  // explicit wins over a value
		{fmt.Errorf("outer: %w", New(InsufficientFunds, "bal", nil)), InsufficientFunds},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestRetryableMatchesArchitecture(t *testing.T) {
	permanent := []Type{InsufficientFunds, InvalidTransaction, ExecutionReverted, Unknown}
	retryable := []Type{Network, Timeout, NonceTooLow, NonceTooHigh, GasPriceTooLow, ReplacementUnderpriced, OutOfGas, AlreadyKnown}
	for _, p := range permanent {
		if p.Retryable() {
			t.Errorf("%s must be permanent", p)
		}
	}
	for _, r := range retryable {
		if !r.Retryable() {
			t.Errorf("%s must be retryable", r)
		}
	}
	if Classify(nil) != "" || IsRetryable(nil) {
		t.Error("nil error classified")
	}
}

func TestCodeOf(t *testing.T) {
	if c := CodeOf(New(Network, "rpc_down", errors.New("x"))); c != "rpc_down" {
		t.Fatalf("code %q", c)
	}
	if c := CodeOf(errors.New("nonce too low")); c != "NONCE_TOO_LOW" {
		t.Fatalf("code %q", c)
	}
}

func TestMinTipNeeded(t *testing.T) {
	gwei25 := big.NewInt(25_000_000_000)
	tests := []struct {
		err  error
		want *big.Int
	}{
		{errors.New("transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000"), gwei25},
		{errors.New("transaction underpriced: gas tip cap 1000000000, minimum needed 25000000000"), gwei25},
		{New(GasPriceTooLow, "rpc-32000", fmt.Errorf("polygon eth_sendRawTransaction: %w",
			rpcError{code: -32000, msg: "transaction gas price below minimum: gas tip cap 30000000000, minimum needed 25000000000"})), gwei25},
		{errors.New("Gas Tip Cap 1, Minimum Needed 2"), big.NewInt(2)},
		// Not tips: intrinsic gas, floor data gas and blob fee floors say "minimum needed" too.
		{errors.New("intrinsic gas too low: gas 21000, minimum needed 21064"), nil},
		{errors.New("insufficient gas for floor data gas cost: gas 21000, minimum needed 21640"), nil},
		{errors.New("transaction gas price below minimum: blob fee cap 1, minimum needed 1000000"), nil},
		{errors.New("gas tip cap 1, minimum needed "), nil},
		{errors.New("gas tip cap 1 and the pool is full, minimum needed 5"), nil},
		{errors.New("nonce too low"), nil},
		{nil, nil},
	}
	for _, tt := range tests {
		got, ok := MinTipNeeded(tt.err)
		if tt.want == nil {
			if ok {
				t.Errorf("MinTipNeeded(%v) = %s, want none", tt.err, got)
			}
			continue
		}
		if !ok || got.Cmp(tt.want) != 0 {
			t.Errorf("MinTipNeeded(%v) = %v, %v; want %s", tt.err, got, ok, tt.want)
		}
	}
}

// FuzzClassify: Classify and the predicates never panic, and a message classifies the same when our
// code wraps it.
func FuzzClassify(f *testing.F) {
	for _, s := range samples {
		f.Add(s.msg)
	}
	f.Add("0x4290503504 amount 5030")
	f.Add("gas tip cap 99999999999999999999999999, minimum needed 1")
	f.Fuzz(func(t *testing.T, msg string) {
		bare := errors.New(msg)
		wrapped := fmt.Errorf("polygon eth_sendRawTransaction: %w", bare)
		if a, b := Classify(bare), Classify(wrapped); a != b {
			t.Fatalf("%q: %s bare, %s wrapped", msg, a, b)
		}
		if IsTransient(bare) != IsTransient(wrapped) || IsRateLimited(bare) != IsRateLimited(wrapped) ||
			IsAlreadyKnown(bare) != IsAlreadyKnown(wrapped) {
			t.Fatalf("%q: predicates differ when wrapped", msg)
		}
		tip, ok := MinTipNeeded(wrapped)
		if ok && (tip == nil || tip.Sign() < 0) {
			t.Fatalf("%q: tip %v", msg, tip)
		}
		_ = CodeOf(wrapped)
	})
}

// rpcError is what go-ethereum's rpc client returns for a JSON-RPC error answer.
type rpcError struct {
	code int
	msg  string
}

func (e rpcError) Error() string  { return e.msg }
func (e rpcError) ErrorCode() int { return e.code }

var _ rpc.Error = rpcError{}

// opaque wraps an error under a text that names nothing.
type opaque struct{ err error }

func (o opaque) Error() string { return "pool refused the transaction" }
func (o opaque) Unwrap() error { return o.err }

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
