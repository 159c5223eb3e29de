package policy

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/txerr"
)

func TestReserved(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"0x0000000000000000000000000000000000000000", true},
		{"0x0000000000000000000000000000000000000001", true},
		{"0x000000000000000000000000000000000000000a", true},
		{"0x000000000000000000000000000000000000000b", false},
		{"0x0000000000000000000000000000000000000100", true},
		{"0x0000000000000000000000000000000000000101", false},
		{"0x0000000000000000000000000000000000010001", false},
		{"0x1000000000000000000000000000000000000001", false},
	} {
		if got := reserved(common.HexToAddress(c.addr)); got != c.want {
			t.Errorf("reserved(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

func TestBreachNamesRule(t *testing.T) {
	b := &Breach{Rule: RuleDailyTotal, Field: "amount", Message: "too much"}
	if b.Error() != "too much (rule daily_total)" {
		t.Fatal(b.Error())
	}
}

// blacklistNode is a token that has isBlacklisted (USDC's) but not isBlackListed (USDT's), or a node
// that is down.
type blacklistNode struct {
	calls   map[string]int
	down    error
	listed  common.Address
	missing []byte
}

func (n *blacklistNode) CodeAt(context.Context, common.Address, *big.Int) ([]byte, error) {
	return nil, nil
}

func (n *blacklistNode) CallContract(_ context.Context, msg ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	sel := string(msg.Data[:4])
	n.calls[sel]++
	if n.down != nil {
		return nil, n.down
	}
	if sel == string(n.missing) {
		return nil, txerr.New(txerr.ExecutionReverted, "", errors.New("execution reverted"))
	}
	out := make([]byte, 32)
	if common.BytesToAddress(msg.Data[4:36]) == n.listed {
		out[31] = 1
	}
	return out, nil
}

// The blacklist check asks a token once about a function it does not have, and fails closed when the
// node cannot answer: a node down must not let a blacklisted recipient through unchecked.
func TestBlacklistCheck(t *testing.T) {
	token := common.HexToAddress("0x00000000000000000000000000000000000000c0")
	listed := common.HexToAddress("0x00000000000000000000000000000000000000b1")
	clean := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	usdt, usdc := string(blacklistSelectors[0]), string(blacklistSelectors[1])
	newRC := func(n Node) *Recipients {
		return &Recipients{Chains: map[string]ChainInfo{"c": {Tokens: map[string]common.Address{"USDC": token}, Node: n}},
			Actions: map[Rule]Action{RulePoisoning: Allow}}
	}
	check := func(rc *Recipients, to common.Address) error {
		_, err := rc.Check(context.Background(), nil, Request{Chain: "c", Asset: "USDC", To: to, Amount: big.NewInt(1)})
		return err
	}

	n := &blacklistNode{calls: map[string]int{}, listed: listed, missing: blacklistSelectors[0]}
	rc := newRC(n)
	var b *Breach
	if err := check(rc, listed); !errors.As(err, &b) || b.Rule != RuleBlacklisted {
		t.Fatalf("blacklisted recipient: %v, want a %s breach", err, RuleBlacklisted)
	}
	for range 3 {
		if err := check(rc, clean); err != nil {
			t.Fatalf("clean recipient: %v", err)
		}
	}
	if n.calls[usdt] != 1 || n.calls[usdc] != 4 {
		t.Fatalf("calls isBlackListed %d, isBlacklisted %d; want 1 (then remembered as missing) and 4", n.calls[usdt], n.calls[usdc])
	}

	down := &blacklistNode{calls: map[string]int{}, down: errors.New("connection refused")}
	if err := check(newRC(down), listed); err == nil || errors.As(err, &b) {
		t.Fatalf("node down: %v, want an error that is not a refusal", err)
	}
}

// codeNode answers eth_getCode from a map, counting the calls per address.
type codeNode struct {
	code  map[common.Address][]byte
	calls map[common.Address]int
}

func (n *codeNode) CodeAt(_ context.Context, a common.Address, _ *big.Int) ([]byte, error) {
	n.calls[a]++
	return n.code[a], nil
}

func (n *codeNode) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return nil, errors.New("not used")
}

// A destination found to be a contract is remembered (a contract keeps its code); one without code is
// asked about on every create, since it can get code at any block (a CREATE2 deployment, an EIP-7702
// delegation), and the moment it does, native transfers to it are held.
func TestContractCheckRemembersOnlyCode(t *testing.T) {
	contract := common.HexToAddress("0x00000000000000000000000000000000000c0de1")
	eoa := common.HexToAddress("0x0000000000000000000000000000000000000e0a")
	n := &codeNode{code: map[common.Address][]byte{contract: {0x60, 0x80}}, calls: map[common.Address]int{}}
	rc := &Recipients{Chains: map[string]ChainInfo{"c": {Tokens: map[string]common.Address{}, Node: n}},
		Actions: map[Rule]Action{RulePoisoning: Allow}}
	check := func(to common.Address) string {
		t.Helper()
		hold, err := rc.Check(context.Background(), nil, Request{Chain: "c", Asset: "ETH", To: to, Amount: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		return hold
	}
	for range 3 {
		if h := check(contract); !strings.Contains(h, string(RuleContract)) {
			t.Fatalf("contract destination not held: %q", h)
		}
		if h := check(eoa); h != "" {
			t.Fatalf("EOA destination held: %q", h)
		}
	}
	if n.calls[contract] != 1 || n.calls[eoa] != 3 {
		t.Fatalf("eth_getCode calls: contract %d (want 1, then remembered), EOA %d (want 3)", n.calls[contract], n.calls[eoa])
	}
	// The EOA gets an EIP-7702 delegation: the next create sees it at once.
	n.code[eoa] = append([]byte{0xef, 0x01, 0x00}, contract.Bytes()...)
	if h := check(eoa); !strings.Contains(h, string(RuleContract)) {
		t.Fatalf("delegated EOA not held: %q", h)
	}
	// With the memory off, every create asks.
	rc2 := &Recipients{Chains: rc.Chains, Actions: rc.Actions, ContractTTL: -1}
	for range 2 {
		if _, err := rc2.Check(context.Background(), nil, Request{Chain: "c", Asset: "ETH", To: contract, Amount: big.NewInt(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if n.calls[contract] != 3 {
		t.Fatalf("ContractTTL -1: %d calls, want 3", n.calls[contract])
	}
}

// The main account is one of our own addresses: paying it is not a withdrawal.
func TestChainsFromConfigOwnAddresses(t *testing.T) {
	hot, main, extra := common.HexToAddress("0x00000000000000000000000000000000000000a1"),
		common.HexToAddress("0x00000000000000000000000000000000000000a2"), common.HexToAddress("0x00000000000000000000000000000000000000a3")
	chains := ChainsFromConfig([]config.Chain{{Name: "c", HotWallets: []config.Address{config.Address(hot)}, MainAccount: config.Address(main)}},
		map[string][]common.Address{"c": {extra}}, nil)
	own := map[common.Address]bool{}
	for _, a := range chains["c"].Own {
		own[a] = true
	}
	if len(own) != 3 || !own[hot] || !own[main] || !own[extra] {
		t.Fatalf("own = %v", chains["c"].Own)
	}
}
