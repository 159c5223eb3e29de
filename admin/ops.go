package admin

// What operators read and do (reads.go, actions.go) is built on ops: the store, the queues, the nonce
// allocator and one node client per chain. The admin API holds no key: an action that signs is recorded
// for recovery (tx_actions, wallet_actions), exactly as the public API's speed-up and cancel are.

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// Chain is what the operators' reads and actions ask of a node; *chain.Client implements it.
type Chain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	NonceAt(ctx context.Context, addr common.Address) (uint64, error)
	PendingNonceAt(ctx context.Context, addr common.Address) (uint64, error)
	BalanceAt(ctx context.Context, addr common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
}

// ChainDeps is one configured chain: its configuration, node client and fee estimator (built from the
// chain's fees config when nil; the fee path of every plan, like recovery's).
type ChainDeps = chain.Deps[Chain]

// Nonces is the nonce allocator's view for operators: the Redis counter and leases, and resync.
type Nonces interface {
	Peek(ctx context.Context, chainID uint64, addr common.Address) (nonce.State, error)
	Resync(ctx context.Context, chainID uint64, addr common.Address, next uint64) (uint64, bool, error)
}

// OpsDeps are what the reads and actions cannot work without.
type OpsDeps struct {
	Store *store.Store
	// Queue takes the messages a retry or a redrive sends, in the database transaction that records it.
	Queue queue.TxSender
	// Queues describes the queues (depth, oldest age) for GET /queues.
	Queues queue.Inspector
	Nonces Nonces
	Chains map[string]ChainDeps
	// RPCTimeout bounds every node call of a read or plan (default 3 s): a node that is down shows as
	// an error field, never a stalled request.
	RPCTimeout time.Duration
}

// ops serves the reads and actions.
type ops struct {
	st      *store.Store
	q       queue.TxSender
	queues  queue.Inspector
	nonces  Nonces
	chains  map[string]ChainDeps
	timeout time.Duration
	now     func() time.Time
}

// newOps checks d (a missing dependency is an error naming it).
func newOps(d OpsDeps) (*ops, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("admin: Store is required")
	case d.Queue == nil:
		return nil, errors.New("admin: Queue is required (retries and redrives send messages)")
	case d.Queues == nil:
		return nil, errors.New("admin: Queues is required (the queue inspector)")
	case d.Nonces == nil:
		return nil, errors.New("admin: Nonces is required (the nonce allocator)")
	}
	chains := make(map[string]ChainDeps, len(d.Chains))
	for name, cd := range d.Chains {
		if cd.Client == nil {
			return nil, fmt.Errorf("admin: chain %s has no node client", name)
		}
		cd, err := chain.WithFees(cd)
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		chains[name] = cd
	}
	t := d.RPCTimeout
	if t <= 0 {
		t = 3 * time.Second
	}
	return &ops{st: d.Store, q: d.Queue, queues: d.Queues, nonces: d.Nonces, chains: chains, timeout: t, now: time.Now}, nil
}

// rpc bounds one node call (or a few) by the RPC timeout.
func (o *ops) rpc(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.timeout)
}

// Error helpers of the reads and actions (the framework's codes, errors.go), each naming the field.
const CodeNodeFailed = "node_unavailable" // 503: a plan needs the node, and it did not answer

func missing(field, msg string) *Error {
	return newError(http.StatusNotFound, CodeNotFound, field, msg)
}
func refuse(field, msg string) *Error  { return newError(http.StatusConflict, CodeConflict, field, msg) }
func invalid(field, msg string) *Error { return unprocessable(CodeInvalid, field, msg) }

// nodeErr is a plan that needs a node that failed: not the caller's fault, and not ours either.
func nodeErr(chainName string, err error) *Error {
	return newError(http.StatusServiceUnavailable, CodeNodeFailed, "", fmt.Sprintf("the %s node did not answer: %v", chainName, err))
}

// refusedErr maps the store's speed-up and cancel rules to this API's errors (store.Refused).
func refusedErr(err error) error {
	var r *store.Refused
	if !errors.As(err, &r) {
		return err
	}
	if r.Code == store.RefusedNotSigned {
		return newError(http.StatusUnprocessableEntity, r.Code, "target", r.Message)
	}
	return newError(http.StatusConflict, r.Code, "target", r.Message)
}

// wallet is a configured wallet of a chain.
type wallet struct {
	chain ChainDeps
	addr  common.Address
	role  string // hot or main
}

// wallets lists the configured wallets of every chain (or one), hot wallets first.
func (o *ops) wallets(only string) []wallet {
	var out []wallet
	for _, name := range o.chainNames() {
		if only != "" && name != only {
			continue
		}
		cd := o.chains[name]
		for _, hw := range cd.Config.HotWallets {
			out = append(out, wallet{chain: cd, addr: hw.Common(), role: "hot"})
		}
		if !cd.Config.MainAccount.IsZero() {
			out = append(out, wallet{chain: cd, addr: cd.Config.MainAccount.Common(), role: "main"})
		}
	}
	return out
}

func (o *ops) chainNames() []string {
	names := make([]string, 0, len(o.chains))
	for n := range o.chains {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// findWallet resolves "chain/address" (a target, or the path of /wallets/{chain}/{address}).
func (o *ops) findWallet(field, chainName, address string) (wallet, error) {
	if _, ok := o.chains[chainName]; !ok {
		return wallet{}, invalid(field, fmt.Sprintf("chain %q is not configured", chainName))
	}
	if !common.IsHexAddress(address) {
		return wallet{}, badParam(field, fmt.Sprintf("%q is not an address", address))
	}
	a := common.HexToAddress(address)
	for _, w := range o.wallets(chainName) {
		if w.addr == a {
			return w, nil
		}
	}
	return wallet{}, invalid(field, fmt.Sprintf("%s is not a wallet of %s", a.Hex(), chainName))
}

// walletTarget parses an action's target "chain/address".
func (o *ops) walletTarget(target string) (wallet, error) {
	c, a, ok := strings.Cut(target, "/")
	if !ok || c == "" || a == "" {
		return wallet{}, badParam("target", `a wallet target is "chain/address"`)
	}
	return o.findWallet("target", c, a)
}
