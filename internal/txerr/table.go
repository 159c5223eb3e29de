package txerr

import (
	"strings"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
)

// kind marks rows whose answer says more than its class.
type kind uint8

const (
	plain       kind = iota
	transient        // the node's state, not the request: another attempt or node may answer otherwise
	rateLimited      // the endpoint's rate limit or plan: its fault, not the request's
)

// row is one known error. A row with a go-ethereum error value matches that value with errors.Is and,
// in a remote answer, its text (taken from the value, never retyped). A row without one matches text.
type row struct {
	err    error
	text   string // lower case; for value rows filled in from err by init
	typ    Type
	kind   kind
	source string // who sends this text, where it is written
}

// rows are tried in order and the first match wins, so a text that contains another (replacement
// transaction underpriced / transaction underpriced) comes first. A text matches at the start of a word
// only ("known transaction" is not in "unknown transaction"), anywhere in the lower-cased message.
// Reverts come first: a revert reason is contract-chosen text and may read like anything below.
// Never put bare digits here (an HTTP status as "503"): an address or an amount can contain them.
var rows = []row{
	// Reverts.
	{err: vm.ErrExecutionReverted, typ: ExecutionReverted, source: "geth core/vm (also anvil, Erigon, bor)"},
	{text: "vm exception while processing transaction", typ: ExecutionReverted, source: "Hardhat: VM Exception while processing transaction: reverted with reason string '…'"},
	{text: "transaction reverted", typ: ExecutionReverted, source: "Hardhat: Transaction reverted without a reason string"},

	// The node has this very transaction.
	{err: txpool.ErrAlreadyKnown, typ: AlreadyKnown, source: "geth core/txpool (also bor, Erigon: ALREADY_EXISTS: already known)"},
	{text: "known transaction", typ: AlreadyKnown, source: "Hardhat/EDR: Known transaction: 0x…; Besu, Klaytn: Known transaction"},
	{text: "already imported", typ: AlreadyKnown, source: "anvil: transaction already imported; Parity: Transaction with the same hash was already imported."},
	{text: "existing txn with same hash", typ: AlreadyKnown, source: "Erigon txpoolcfg DuplicateHash"},
	{text: "alreadyknown", typ: AlreadyKnown, source: "Nethermind AcceptTxResult: AlreadyKnown"},

	// Nonces.
	{err: core.ErrNonceTooLow, typ: NonceTooLow, source: "geth core (also bor, Erigon, anvil; Hardhat: Nonce too low. Expected nonce to be 1 but got 0.)"},
	{text: "oldnonce", typ: NonceTooLow, source: "Nethermind AcceptTxResult: OldNonce"},
	{err: core.ErrNonceTooHigh, typ: NonceTooHigh, source: "geth core (also anvil; Hardhat: Nonce too high. Expected nonce to be 2 but got 9.)"},
	{text: "noncegap", typ: NonceTooHigh, source: "Nethermind AcceptTxResult: NonceGap"},
	{err: core.ErrNonceMax, typ: InvalidTransaction, source: "geth core"},

	// Fees. The replacement texts first: "replacement transaction underpriced" contains
	// "transaction underpriced".
	{err: txpool.ErrReplaceUnderpriced, typ: ReplacementUnderpriced, source: "geth core/txpool (also bor, Erigon, anvil; Hardhat: Replacement transaction underpriced. A gasPrice/maxFeePerGas of at least …)"},
	{text: "could not replace existing tx", typ: ReplacementUnderpriced, source: "Erigon txpoolcfg NotReplaced"},
	{err: core.ErrTipAboveFeeCap, typ: InvalidTransaction, source: "geth core (also bor, anvil)"},
	{err: core.ErrTipVeryHigh, typ: InvalidTransaction, source: "geth core"},
	{err: core.ErrFeeCapVeryHigh, typ: InvalidTransaction, source: "geth core"},
	{err: txpool.ErrTxGasPriceTooLow, typ: GasPriceTooLow, source: "geth core/txpool; bor: transaction gas price below minimum: gas tip cap X, minimum needed Y"},
	{err: txpool.ErrUnderpriced, typ: GasPriceTooLow, source: "geth core/txpool; bor (geth 1.13 base): transaction underpriced: gas tip cap X, minimum needed Y"},
	{text: "gas tip cap", typ: GasPriceTooLow, source: "bor core/txpool/validation.go: gas tip cap X, minimum needed Y (Polygon's 25 gwei floor)"},
	{err: core.ErrFeeCapTooLow, typ: GasPriceTooLow, source: "geth core (also anvil)"},
	{err: types.ErrGasFeeCapTooLow, typ: GasPriceTooLow, source: "geth core/types"},
	{text: "is too low for the next block", typ: GasPriceTooLow, source: "Hardhat/EDR: Transaction maxFeePerGas (X) is too low for the next block, which has a baseFeePerGas of Y"},
	{text: "fee too low", typ: GasPriceTooLow, source: "Erigon txpoolcfg FeeTooLow: FEE_TOO_LOW: fee too low"},
	{text: "feetoolow", typ: GasPriceTooLow, source: "Nethermind AcceptTxResult: FeeTooLow"},
	{text: "underpriced", typ: GasPriceTooLow, source: "Erigon txpoolcfg UnderPriced: FEE_TOO_LOW: underpriced"},
	{text: "gas price too low", typ: GasPriceTooLow, source: "Arbitrum sequencer"},

	// Funds.
	{err: core.ErrInsufficientFunds, typ: InsufficientFunds, source: "geth core (also bor, anvil)"},
	{err: core.ErrInsufficientFundsForTransfer, typ: InsufficientFunds, source: "geth core"},
	{err: vm.ErrInsufficientBalance, typ: InsufficientFunds, source: "geth core/vm"},
	{text: "insufficient funds", typ: InsufficientFunds, source: "Erigon txpoolcfg InsufficientFunds: INVALID: insufficient funds"},
	{text: "insufficientfunds", typ: InsufficientFunds, source: "Nethermind AcceptTxResult: InsufficientFunds"},
	{text: "doesn't have enough funds to send tx", typ: InsufficientFunds, source: "Hardhat/EDR: Sender doesn't have enough funds to send tx. The max upfront cost is: …"},

	// Gas.
	{err: core.ErrIntrinsicGas, typ: OutOfGas, source: "geth core (bor: intrinsic gas too low: gas X, minimum needed Y)"},
	{err: core.ErrFloorDataGas, typ: OutOfGas, source: "geth core (EIP-7623)"},
	{text: "intrinsicgas", typ: OutOfGas, source: "Erigon txpoolcfg IntrinsicGas: INVALID: IntrinsicGas"},
	{text: "transaction requires at least", typ: OutOfGas, source: "Hardhat: Transaction requires at least 21000 gas but got 0"},
	{text: "gas required exceeds allowance", typ: OutOfGas, source: "geth eth/gasestimator: gas required exceeds allowance (N); anvil"},
	{err: vm.ErrOutOfGas, typ: OutOfGas, source: "geth core/vm"},

	// Transactions no fee or retry can fix.
	{err: core.ErrGasLimitTooHigh, typ: InvalidTransaction, source: "geth core (EIP-7825; bor at Madhugiri)"},
	{err: txpool.ErrGasLimit, typ: InvalidTransaction, source: "geth core/txpool (Hardhat: Transaction gas limit is X and exceeds block gas limit of Y)"},
	{err: txpool.ErrOversizedData, typ: InvalidTransaction, source: "geth core/txpool (also Erigon)"},
	{err: txpool.ErrInvalidSender, typ: InvalidTransaction, source: "geth core/txpool (also Erigon)"},
	{err: txpool.ErrNegativeValue, typ: InvalidTransaction, source: "geth core/txpool (also Erigon)"},
	{err: core.ErrSenderNoEOA, typ: InvalidTransaction, source: "geth core"},
	{err: types.ErrInvalidSig, typ: InvalidTransaction, source: "geth core/types"},
	{err: types.ErrInvalidChainId, typ: InvalidTransaction, source: "geth core/types"},
	{text: "invalid chain id", typ: InvalidTransaction, source: "Erigon eth_sendRawTransaction: invalid chain id, expected: X got: Y"},
	{err: types.ErrTxTypeNotSupported, typ: InvalidTransaction, source: "geth core/types"},
	{text: "only replay-protected", typ: InvalidTransaction, source: "geth internal/ethapi: only replay-protected (EIP-155) transactions allowed over RPC"},
	{text: "rlp:", typ: InvalidTransaction, source: "geth rlp: a raw transaction that does not decode (rlp: expected input list for types.LegacyTx)"},
	{text: "typed transaction too short", typ: InvalidTransaction, source: "geth core/types"},

	// The node's pool is full for now.
	{err: legacypool.ErrTxPoolOverflow, typ: Network, source: "geth core/txpool/legacypool"},
	{err: txpool.ErrAccountLimitExceeded, typ: Network, source: "geth core/txpool"},
	{text: "sub-pool is full", typ: Network, source: "Erigon txpoolcfg: pending/baseFee/queued sub-pool is full"},

	// The node's state, not the request.
	{text: "header not found", typ: Network, kind: transient, source: "geth eth/api_backend.go (a node behind the head; Infura, Alchemy load balancers)"},
	{text: "missing trie node", typ: Network, kind: transient, source: "geth trie.MissingNodeError (state pruned or not synced)"},
	{text: "transaction indexing is in progress", typ: Network, kind: transient, source: "geth internal/ethapi TxIndexingError"},
	{text: "request timed out", typ: Timeout, kind: transient, source: "geth rpc server (code -32002)"},

	// Rate limits and plans.
	{text: "exceeded its compute units per second capacity", typ: Network, kind: rateLimited, source: "Alchemy: Your app has exceeded its compute units per second capacity"},
	{text: "request limit reached", typ: Network, kind: rateLimited, source: "QuickNode (-32007): 15/second request limit reached - reduce calls per second or upgrade your account"},
	{text: "rate limit", typ: Network, kind: rateLimited, source: "Infura (-32005): daily request count exceeded, request rate limited"},
	{text: "request rate exceeded", typ: Network, kind: rateLimited, source: "Infura (-32005): project ID request rate exceeded"},
	{text: "too many requests", typ: Network, kind: rateLimited, source: "HTTP 429 reason phrase as go-ethereum's rpc.HTTPError prints it (429 Too Many Requests); gobreaker half-open"},

	// HTTP statuses as go-ethereum's rpc.HTTPError prints them, in words, never bare digits.
	{text: "502 bad gateway", typ: Network, source: "HTTP 502 status line (load balancers, nginx)"},
	{text: "503 service unavailable", typ: Network, source: "HTTP 503 status line"},
	{text: "503 service temporarily unavailable", typ: Network, source: "nginx 503 page"},
	{text: "504 gateway timeout", typ: Network, source: "HTTP 504 status line"},

	// Transport.
	{text: "connection refused", typ: Network, source: "Go net (ECONNREFUSED)"},
	{text: "connection reset", typ: Network, source: "Go net (ECONNRESET)"},
	{text: "broken pipe", typ: Network, source: "Go net (EPIPE)"},
	{text: "unexpected eof", typ: Network, source: "Go io.ErrUnexpectedEOF (a connection cut mid-answer)"},
	{text: "no such host", typ: Network, source: "Go net DNS"},
	{text: "network is unreachable", typ: Network, source: "Go net (ENETUNREACH)"},
	{text: "circuit breaker is open", typ: Network, source: "sony/gobreaker ErrOpenState"},
	{text: "deadline exceeded", typ: Timeout, source: "Go context.DeadlineExceeded as text"},
	{text: "timeout", typ: Timeout, source: "Go net: i/o timeout"},
	{text: "timed out", typ: Timeout, source: "providers and proxies: request timed out, upstream timed out"},
}

func init() {
	for i := range rows {
		if rows[i].err != nil {
			rows[i].text = strings.ToLower(rows[i].err.Error())
		}
	}
}

// match is the first row whose text is in msg at the start of a word, or nil.
func match(msg string) *row {
	msg = strings.ToLower(msg)
	for i := range rows {
		if containsWord(msg, rows[i].text) {
			return &rows[i]
		}
	}
	return nil
}

// containsWord reports whether sub occurs in s where the byte before it is not a letter or digit.
func containsWord(s, sub string) bool {
	if sub == "" {
		return false
	}
	for from := 0; ; {
		i := strings.Index(s[from:], sub)
		if i < 0 {
			return false
		}
		i += from
		if i == 0 || !isWordByte(s[i-1]) {
			return true
		}
		from = i + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}
