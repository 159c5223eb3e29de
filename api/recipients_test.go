package api

import (
	"context"
	"encoding/hex"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// blacklistToken is the runtime code of a minimal USDT-like blacklist: isBlackListed(address) returns
// true for one address (spliced in at deployment) and false for any other; every other call reverts.
// The repository's TestToken has no blacklist, so this stands in for USDT's on the dev chain.
//
//	PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR PUSH4 0xe47d6060 EQ PUSH1 0x13 JUMPI PUSH1 0 DUP1 REVERT
//	JUMPDEST PUSH1 4 CALLDATALOAD PUSH20 <listed> EQ PUSH1 0 MSTORE PUSH1 0x20 PUSH1 0 RETURN
func blacklistToken(listed common.Address) []byte {
	runtime := append(common.FromHex("0x60003560e01c63e47d606014601357600080fd5b60043573"), listed.Bytes()...)
	runtime = append(runtime, common.FromHex("0x1460005260206000f3")...)
	// Constructor: copy the runtime code after these 11 bytes to memory and return it.
	initCode := []byte{0x60, byte(len(runtime)), 0x80, 0x60, 11, 0x60, 0, 0x39, 0x60, 0, 0xf3}
	return append(initCode, runtime...)
}

func TestRecipientChecksOnChain(t *testing.T) {
	ctx := context.Background()
	deployer := testenv.NewAccount(t)
	chain := testenv.Chain(t, 100*time.Millisecond, deployer.Address)
	client, err := chain.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := big.NewInt(31337)
	addrs, err := contracts.DeployAll(ctx, client, deployer.Key, chainID)
	if err != nil {
		t.Fatal(err)
	}
	listed := common.HexToAddress("0x000000000000000000000000000000000000bAd1").Bytes()
	listedAddr := common.BytesToAddress(listed)
	usdt, err := contracts.Deploy(ctx, client, deployer.Key, chainID,
		&bind.MetaData{Bin: "0x" + hex.EncodeToString(blacklistToken(listedAddr))})
	if err != nil {
		t.Fatal(err)
	}
	hot := mustAddress(strings.ToLower(hotAddr))
	chains := []config.Chain{{
		Name: "local", ChainID: 31337, RPC: []string{"http://unused"}, Confirmations: 1,
		Assets: []config.Asset{
			{Symbol: "POL", Decimals: 18},
			{Symbol: "USDT", Decimals: 6, Address: config.Address(usdt)},
			{Symbol: "TT", Decimals: 6, Address: config.Address(addrs.USDT)},
		},
		HotWallets: []config.Address{hot},
	}}
	// Twice: with every look-alike check asked of the database, and answered by the destination index
	// where it can (as `sluice api` runs).
	for _, index := range []bool{false, true} {
		t.Run(map[bool]string{false: "database", true: "index"}[index], func(t *testing.T) {
			recipientChecks(t, chains, deployer.Address, client, addrs, hot, listedAddr, index)
		})
	}
}

func recipientChecks(t *testing.T, chains []config.Chain, mainAccount common.Address, client *ethclient.Client, addrs contracts.Addresses,
	hot config.Address, listedAddr common.Address, index bool) {
	ctx := context.Background()
	actions := map[policy.Rule]policy.Action{}
	var dests *policy.Destinations
	e := newPolicyEnv(t, func(d *Deps) {
		d.Chains = chains
		if index {
			dests = policy.NewDestinations(d.Store.DB, 0, 0, nil, nil)
		}
		eng, err := policy.New(policy.Deps{Store: d.Store, Recipients: &policy.Recipients{
			Chains:       policy.ChainsFromConfig(chains, map[string][]common.Address{"local": {mainAccount}}, map[string]policy.Node{"local": client}),
			Actions:      actions,
			Destinations: dests,
		}}, nil, policy.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		d.Policy = eng
	})
	if dests != nil {
		if err := dests.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(name string, b map[string]any, rule policy.Rule) {
		t.Helper()
		expectBreach(t, e.post(aliceKey, b), CodeRecipientRefused, "to", rule)
	}
	created := func(b map[string]any, status string, rule policy.Rule) {
		t.Helper()
		r := e.post(aliceKey, b)
		if r.status != http.StatusCreated || r.json(t)["status"] != status {
			t.Fatalf("%v: %d %s, want 201 %s", b, r.status, r.raw, status)
		}
		if rule != "" {
			h, err := e.st.HoldOf(ctx, r.json(t)["id"].(string))
			if err != nil || !strings.Contains(h.Reason, string(rule)) {
				t.Fatalf("hold %+v (%v), want rule %s", h, err, rule)
			}
		}
	}
	refused("hot wallet", body("own", "to", hot.Common().Hex()), policy.RuleOwnWallet)
	refused("main account", body("main", "to", mainAccount.Hex()), policy.RuleOwnWallet)
	// The zero address is refused earlier, by validation.
	if r := e.post(aliceKey, body("zero", "to", "0x0000000000000000000000000000000000000000")); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("zero address: %d %s", r.status, r.raw)
	}
	refused("ecrecover", body("p1", "to", "0x0000000000000000000000000000000000000001"), policy.RuleReserved)
	refused("point evaluation", body("p10", "to", "0x000000000000000000000000000000000000000A"), policy.RuleReserved)
	refused("p256verify", body("p256", "to", "0x0000000000000000000000000000000000000100"), policy.RuleReserved)
	refused("token itself", body("self", "asset", "TT", "to", addrs.USDT.Hex()), policy.RuleTokenSelf)
	refused("blacklisted", body("bl", "to", listedAddr.Hex()), policy.RuleBlacklisted)
	// 0x0b is just past the precompiles, and the TestToken (no blacklist function) is not a refusal.
	created(body("p11", "to", "0x000000000000000000000000000000000000000b"), "PENDING", "")
	created(body("tt", "asset", "TT", "to", toAddr), "PENDING", "")
	created(body("clean", "to", toAddr), "PENDING", "")
	// Native coin to a contract: held. A token to a contract is not (tokens go to contracts every day).
	created(body("native-contract", "asset", "POL", "to", addrs.Multicall3.Hex()), "AWAITING_APPROVAL", policy.RuleContract)
	created(body("token-contract", "to", addrs.Multicall3.Hex()), "PENDING", "")

	// Address poisoning: same first and last four hex characters as a recent destination.
	poison := "0x5aAe" + strings.Repeat("0", 32) + toAddr[len(toAddr)-4:]
	created(body("poison", "to", common.HexToAddress(poison).Hex()), "AWAITING_APPROVAL", policy.RulePoisoning)
	// Another client never paid toAddr: no match for bob.
	if r := e.post(bobKey, body("bob-poison", "to", common.HexToAddress(poison).Hex())); r.status != http.StatusCreated || r.json(t)["status"] != "PENDING" {
		t.Fatalf("bob: %d %s", r.status, r.raw)
	}

	// Actions are configurable: allow native to contracts, reject look-alikes.
	actions[policy.RuleContract] = policy.Allow
	actions[policy.RulePoisoning] = policy.Reject
	created(body("native-contract-2", "asset", "POL", "to", addrs.BatchTransfer.Hex()), "PENDING", "")
	refused("poison reject", body("poison-2", "to", common.HexToAddress(poison).Hex()), policy.RulePoisoning)
}
