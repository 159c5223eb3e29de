package policy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// Action is what a recipient check does when it matches.
type Action string

// The actions.
const (
	Reject Action = "reject"
	Hold   Action = "hold"
	Allow  Action = "allow"
)

// DefaultActions are the recipient checks' actions unless configured otherwise.
var DefaultActions = map[Rule]Action{
	RuleOwnWallet:   Reject,
	RuleReserved:    Reject,
	RuleTokenSelf:   Reject,
	RuleContract:    Hold,
	RuleBlacklisted: Reject,
	RulePoisoning:   Hold,
}

// Node is what the checks ask of a chain's node (an *ethclient.Client has both).
type Node interface {
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
	CallContract(ctx context.Context, call ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
}

// ChainInfo is what the checks know of a configured chain.
type ChainInfo struct {
	// Own are our hot wallets and main account: paying them is not a withdrawal.
	Own []common.Address
	// Tokens maps an asset symbol to its contract (absent: the native coin).
	Tokens map[string]common.Address
	// Node answers eth_getCode and eth_call; nil skips the checks that need it.
	Node Node
}

// Recipients runs the recipient checks.
type Recipients struct {
	Chains  map[string]ChainInfo
	Actions map[Rule]Action // missing rules take DefaultActions
	// PoisoningWindow is how far back a client's destinations are compared (DefaultPoisoningWindow).
	PoisoningWindow time.Duration
	// Destinations answers most look-alike checks from memory (nil: every check asks the database).
	Destinations *Destinations
	// Timeout bounds the node calls of one check (DefaultNodeTimeout): a slow node refuses nothing, it fails
	// the request with a 5xx the client retries.
	Timeout time.Duration

	// lacks remembers which blacklist function a token does not have (key: token address and
	// selector), learnt from its revert: a token's code does not grow a function, so asking again on
	// every create would only double the node calls on the API's hot path.
	lacks sync.Map
	// contracts remembers the destinations found to have code (key: chain and address), for
	// ContractTTL: see hasCode for why only that answer is kept.
	contracts codeCache
	// ContractTTL is how long an address found to have code is taken to still have it without asking
	// the node again (default DefaultContractTTL; negative: always ask).
	ContractTTL time.Duration
}

// DefaultNodeTimeout bounds the node calls of one check unless Timeout says otherwise.
const DefaultNodeTimeout = 3 * time.Second

// DefaultContractTTL is how long a destination found to be a contract is remembered.
const DefaultContractTTL = time.Hour

// codeCache holds, per chain and address, until when the address is known to have code.
type codeCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (c *codeCache) has(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[key]
	return ok && now.Before(exp)
}

func (c *codeCache) put(key string, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 100_000 {
		c.m = map[string]time.Time{} // bounded: dropping it all costs one eth_getCode per contract again
	}
	c.m[key] = exp
}

// hasCode asks the node whether to has code, remembering a yes for ContractTTL. A no is never kept:
// an address without code can have code from the next block on — a contract deployed to it (CREATE2
// to a precomputed address) or an EIP-7702 delegation (the designator 0xef0100‖delegate is code,
// and it runs on a plain transfer, which may revert) — and a kept no would let a native transfer to it
// through unheld. A yes stays true for contracts (since EIP-6780 SELFDESTRUCT removes code only in
// the transaction that created it); for a 7702 delegation later cleared, a kept yes can only hold a
// transfer that would have passed, which is the safe side.
func (rc *Recipients) hasCode(ctx context.Context, chain string, node Node, to common.Address) (bool, error) {
	key := chain + ":" + string(to.Bytes())
	now := time.Now()
	if rc.ContractTTL >= 0 && rc.contracts.has(key, now) {
		return true, nil
	}
	code, err := node.CodeAt(ctx, to, nil)
	if err != nil {
		return false, err
	}
	if len(code) == 0 {
		return false, nil
	}
	if ttl := rc.ContractTTL; ttl >= 0 {
		if ttl == 0 {
			ttl = DefaultContractTTL
		}
		rc.contracts.put(key, now.Add(ttl))
	}
	return true, nil
}

func (rc *Recipients) action(r Rule) Action {
	if a, ok := rc.Actions[r]; ok {
		return a
	}
	return DefaultActions[r]
}

// The selectors of the stablecoin blacklists: USDT's isBlackListed(address) and USDC's
// isBlacklisted(address).
var blacklistSelectors = [][]byte{
	{0xe4, 0x7d, 0x60, 0x60}, // isBlackListed(address)
	{0xfe, 0x57, 0x5a, 0x87}, // isBlacklisted(address)
}

// Check runs the checks in order; the first that matches with Reject refuses, Hold reasons accumulate.
func (rc *Recipients) Check(ctx context.Context, st *store.Store, r Request) (string, error) {
	ci := rc.Chains[r.Chain]
	var holds []string
	match := func(rule Rule, msg string) error {
		switch rc.action(rule) {
		case Reject:
			return &Breach{Rule: rule, Field: "to", Message: msg}
		case Hold:
			holds = append(holds, msg+" (rule "+string(rule)+")")
		}
		return nil
	}
	to := r.To
	for _, a := range ci.Own {
		if a == to {
			if err := match(RuleOwnWallet, "destination "+to.Hex()+" is one of our own wallets"); err != nil {
				return "", err
			}
		}
	}
	if reserved(to) {
		if err := match(RuleReserved, "destination "+to.Hex()+" is the zero address or a precompile"); err != nil {
			return "", err
		}
	}
	token, isToken := ci.Tokens[r.Asset]
	if isToken && token == to {
		if err := match(RuleTokenSelf, "destination "+to.Hex()+" is the "+r.Asset+" contract itself"); err != nil {
			return "", err
		}
	}
	// The look-alike query, when the destination index cannot answer, runs beside the node calls: a
	// create waits for the slower of the two, not both.
	type found struct {
		similar string
		err     error
	}
	var look chan found
	if rc.action(RulePoisoning) != Allow && (rc.Destinations == nil || !rc.Destinations.clear(r.ClientID, r.Chain, to)) {
		look = make(chan found, 1)
		go func() {
			similar, err := rc.lookalike(ctx, st, r)
			look <- found{similar, err}
		}()
	}
	wait := func() (found, bool) {
		if look == nil {
			return found{}, false
		}
		f := <-look
		look = nil
		return f, true
	}
	defer wait() // a refusal from a node check returns early: the query's connection goes back first
	if ci.Node != nil {
		timeout := rc.Timeout
		if timeout <= 0 {
			timeout = DefaultNodeTimeout
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if !isToken && rc.action(RuleContract) != Allow {
			isContract, err := rc.hasCode(cctx, r.Chain, ci.Node, to)
			if err != nil {
				return "", fmt.Errorf("recipient check eth_getCode %s: %w", to.Hex(), err)
			}
			if isContract {
				if err := match(RuleContract, "destination "+to.Hex()+" is a contract, which may not accept the native coin"); err != nil {
					return "", err
				}
			}
		}
		if isToken && rc.action(RuleBlacklisted) != Allow {
			for _, sel := range blacklistSelectors {
				key := string(token.Bytes()) + string(sel)
				if _, lacks := rc.lacks.Load(key); lacks {
					continue
				}
				data := append(append([]byte{}, sel...), common.LeftPadBytes(to.Bytes(), 32)...)
				out, err := ci.Node.CallContract(cctx, ethereum.CallMsg{To: &token, Data: data}, nil)
				// A token without that function reverts or returns nothing: that says nothing about the
				// recipient, and never will. Any other failure (the node down, a timeout) is not an
				// answer: the check fails rather than pass unchecked. Only a well-formed true is a match.
				if err != nil && txerr.Classify(err) != txerr.ExecutionReverted {
					return "", fmt.Errorf("recipient check blacklist %s: %w", to.Hex(), err)
				}
				if err != nil || len(out) != 32 {
					rc.lacks.Store(key, true)
					continue
				}
				if new(big.Int).SetBytes(out).Cmp(big.NewInt(1)) == 0 {
					if err := match(RuleBlacklisted, "destination "+to.Hex()+" is blacklisted by the "+r.Asset+" contract; the transfer would revert"); err != nil {
						return "", err
					}
					break
				}
			}
		}
	}
	if f, ok := wait(); ok {
		if f.err != nil {
			return "", f.err
		}
		if f.similar != "" {
			if err := match(RulePoisoning, "destination "+to.Hex()+" looks like "+f.similar+", a recent destination, but differs in the middle"); err != nil {
				return "", err
			}
		}
	}
	return strings.Join(holds, "; "), nil
}

// reserved reports the zero address, the precompiles 0x01–0x0a and 0x100 (P-256 verification, RIP-7212 /
// EIP-7951, on newer chains). 0x100 is reserved on every chain: where it is not a precompile yet, nobody
// holds its key either.
func reserved(a common.Address) bool {
	var zero19 [18]byte
	if [18]byte(a[:18]) != zero19 {
		return false
	}
	n := uint16(a[18])<<8 | uint16(a[19])
	return n <= 0x0a || n == 0x100
}

// lookalike returns a recent destination of the client on this chain that shares the first and last
// four hex characters (store.AddressEdge) with r.To but is another address ("" for none).
func (rc *Recipients) lookalike(ctx context.Context, st *store.Store, r Request) (string, error) {
	window := rc.PoisoningWindow
	if window <= 0 {
		window = DefaultPoisoningWindow
	}
	// One index range of idx_withdrawals_to_edge (client_id, chain, to_edge, to_address), split around
	// the destination itself by "to_address <> ?": paying one address many times must not make this a
	// scan of those payments.
	since, to := time.Now().UTC().Add(-window), r.To.Hex()
	var a string
	err := st.DB.QueryRowContext(ctx, `SELECT to_address FROM withdrawals
		WHERE client_id = ? AND chain = ? AND to_edge = ? AND to_address <> ? AND created_at > ? LIMIT 1`,
		r.ClientID, r.Chain, store.AddressEdge(to), to, since).Scan(&a)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("recent destinations: %w", err)
	}
	return a, nil
}

// ChainsFromConfig builds the checks' view of the configured chains: the hot wallets and the main
// account as our own addresses (plus extra, by chain name), the token contracts, and
// the node of each chain from nodes (absent: the checks needing a node are skipped on that chain).
func ChainsFromConfig(chains []config.Chain, extra map[string][]common.Address, nodes map[string]Node) map[string]ChainInfo {
	out := make(map[string]ChainInfo, len(chains))
	for _, ch := range chains {
		ci := ChainInfo{Tokens: map[string]common.Address{}, Node: nodes[ch.Name]}
		for _, a := range ch.HotWallets {
			ci.Own = append(ci.Own, a.Common())
		}
		if !ch.MainAccount.IsZero() {
			ci.Own = append(ci.Own, ch.MainAccount.Common())
		}
		ci.Own = append(ci.Own, extra[ch.Name]...)
		for _, a := range ch.Assets {
			if !a.Native() {
				ci.Tokens[a.Symbol] = a.Address.Common()
			}
		}
		out[ch.Name] = ci
	}
	return out
}
